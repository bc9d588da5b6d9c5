"""M/G/1: queue invariants, the busy-server limit and the log1p preprocessing."""

import numpy as np
import pytest
import torch

from bnre.tasks import MG1, Gaussian
from bnre.train import build_estimator


def test_quantiles_are_monotone_and_above_the_minimum_service():
    task = MG1()
    rng = np.random.default_rng(0)
    theta = task.prior.sample(20_000, rng)
    d = task.inter_departures(theta, np.random.default_rng(1))
    assert np.all(d >= np.minimum(theta[:, :1], theta[:, 1:2]))
    x = task.simulate(theta, np.random.default_rng(1))
    assert np.allclose(x, np.percentile(d, [0, 25, 50, 75, 100], axis=1).T)
    assert np.all(np.diff(x, axis=1) >= 0)
    assert np.all(x[:, 0] >= np.minimum(theta[:, 0], theta[:, 1]))


@pytest.mark.parametrize("t1, t2", [(2.0, 6.0), (7.0, 1.0)])
def test_busy_server_departs_at_the_service_rate(t1, t2):
    # tiny inter-arrival times: the queue never empties and d_i = s_i for i > 1
    task = MG1()
    theta = np.tile([[t1, t2, 1e6]], (5_000, 1))
    x = task.simulate(theta, np.random.default_rng(2))
    assert x[:, 2].mean() == pytest.approx((t1 + t2) / 2, rel=0.01)
    assert np.all(x[:, 0] >= min(t1, t2)) and np.all(x[:, 4] <= max(t1, t2) + 1e-5)


def test_idle_server_departs_at_the_arrival_rate():
    # rare arrivals: the server is idle and d_i ~ s_i + v_i, mean (t1 + t2) / 2 + 1 / rate
    task = MG1()
    theta = np.tile([[0.0, 0.01, 1e-4]], (2_000, 1))
    d = task.inter_departures(theta, np.random.default_rng(3))
    assert d.mean() == pytest.approx(1e4, rel=0.02)


def test_zero_rate_stays_finite():
    task = MG1()
    theta = np.array([[1.0, 2.0, 0.0], [5.0, 5.0, 1e-300]])
    x = task.simulate(theta, np.random.default_rng(4))
    assert np.isfinite(x.astype(np.float32)).all()


def test_preprocess_is_log1p_before_standardisation():
    task = MG1()
    estimator = build_estimator(task, [8, 8], "SELU")
    theta = task.prior.sample(512, np.random.default_rng(5))
    x = torch.as_tensor(task.simulate(theta, np.random.default_rng(6)), dtype=torch.float32)
    estimator.set_standardisation(x)
    assert torch.allclose(estimator.x_mean, torch.log1p(x).mean(0))
    assert torch.allclose(estimator.x_std, torch.log1p(x).std(0))


def test_preprocess_adds_no_state():
    # parameter-free: model files written before preprocess existed still load
    for task in (Gaussian(), MG1()):
        keys = build_estimator(task, [8], "SELU").state_dict()
        assert not any(key.startswith("preprocess") for key in keys)
