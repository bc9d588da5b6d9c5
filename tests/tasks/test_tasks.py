"""The shared task interface, for every registered task."""

import numpy as np
import pytest
import torch

from bnre.tasks import TASKS, get_task
from bnre.train import build_estimator


@pytest.fixture(params=sorted(TASKS))
def task(request):
    return get_task(request.param)


def test_prior_samples_lie_in_the_box(task):
    theta = task.prior.sample(1000, np.random.default_rng(0))
    assert theta.shape == (1000, task.theta_dim)
    assert np.all((theta >= task.lower) & (theta <= task.upper))
    assert np.all(task.prior.log_prob(theta) == -task.prior.log_volume)


def test_prior_log_prob_outside_box(task):
    outside = task.upper + 1.0
    assert task.prior.log_prob(outside[None])[0] == -np.inf
    assert task.prior.log_prob(torch.as_tensor(outside[None]))[0] == -np.inf


def test_simulator_shapes_and_determinism(task):
    theta = task.prior.sample(64, np.random.default_rng(0))
    x1 = task.simulate(theta, np.random.default_rng(1))
    x2 = task.simulate(theta, np.random.default_rng(1))
    x3 = task.simulate(theta, np.random.default_rng(2))
    assert x1.shape == (64, *task.x_shape)
    assert np.array_equal(x1, x2)
    assert not np.array_equal(x1, x3)
    assert np.isfinite(x1).all()


def test_default_network_gives_one_log_ratio_per_pair(task):
    estimator = build_estimator(task, [8, 8], "SELU")
    theta = torch.as_tensor(task.prior.sample(5, np.random.default_rng(0)), dtype=torch.float32)
    x = torch.as_tensor(task.simulate(theta.numpy(), np.random.default_rng(0)), dtype=torch.float32)
    assert estimator(theta, x).shape == (5,)


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task("nope")
