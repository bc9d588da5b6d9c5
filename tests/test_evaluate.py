"""Evaluation of estimators, checked with the exact ratio of the Gaussian task."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from bnre.evaluate import evaluate
from bnre.simulate import simulate_range
from bnre.tasks import Gaussian
from bnre.train import build_estimator


class ExactRatio(nn.Module):
    """The true log-ratio log p(theta | x) - log p(theta) of the Gaussian task."""

    def __init__(self, task, scale=1.0):
        super().__init__()
        self.task, self.scale = task, scale

    def embed(self, x):
        return x

    def head_log_ratio(self, theta, embedding):
        return self.task.log_posterior(theta, embedding, self.scale) + self.task.prior.log_volume


@pytest.fixture(scope="module")
def test_pairs():
    return simulate_range(Gaussian(), "test", 4, 0, 1000)


def metrics_of(table, replicate):
    sub = table[table.replicate == replicate]
    return dict(zip(sub.metric, sub.value))


def test_exact_ratio_is_calibrated_and_gives_true_log_posterior(test_pairs):
    task = Gaussian()
    theta, x = test_pairs
    metrics, curves, ranks = evaluate(task, [ExactRatio(task)], theta, x, bins=60)
    m = metrics_of(metrics, "0")
    assert abs(m["coverage_auc"]) < 0.02
    true_log_posterior = task.log_posterior(torch.as_tensor(theta).double(), torch.as_tensor(x).double()).mean().item()
    assert m["log_posterior"] == pytest.approx(true_log_posterior, abs=0.01)
    assert m["log_posterior_unnormalised"] == pytest.approx(true_log_posterior, abs=1e-4)
    # the exact ratio is balanced: E_joint[d] + E_marginal[d] = 1 in expectation
    assert m["balancing"] == pytest.approx(1.0, abs=0.03)
    assert m["log_prior"] == pytest.approx(-math.log(4))
    c = curves[curves.replicate == "0"]
    assert ((c.lower <= c.level + 0.01) & (c.level - 0.01 <= c.upper)).all()
    assert len(ranks) == 2 * 1000  # member and ensemble


def test_overconfident_ratio_has_negative_auc(test_pairs):
    task = Gaussian()
    metrics, _, _ = evaluate(task, [ExactRatio(task, scale=0.5)], *test_pairs, bins=60)
    assert metrics_of(metrics, "0")["coverage_auc"] < -0.1


def test_ensemble_of_identical_members_equals_the_member(test_pairs):
    task = Gaussian()
    torch.manual_seed(0)
    estimator = build_estimator(task, [16, 16], "SELU").eval()
    metrics, curves, ranks = evaluate(task, [estimator, estimator, estimator], *test_pairs, bins=30)
    one, ensemble = metrics_of(metrics, "0"), metrics_of(metrics, "ensemble")
    for key in one:
        assert ensemble[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6)
    assert np.allclose(ranks[ranks.replicate == "0"]["rank"].values, ranks[ranks.replicate == "ensemble"]["rank"].values, atol=1e-6)


def test_ensemble_of_two_posteriors_is_their_mixture(test_pairs):
    task = Gaussian()
    narrow, wide = ExactRatio(task, 0.5), ExactRatio(task, 2.0)
    metrics, _, _ = evaluate(task, [narrow, wide], *test_pairs, bins=40)
    aucs = {r: metrics_of(metrics, r)["coverage_auc"] for r in ("0", "1", "ensemble")}
    assert aucs["0"] < aucs["ensemble"] < aucs["1"]
