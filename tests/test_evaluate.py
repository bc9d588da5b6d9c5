"""Evaluation of estimators, checked with the exact ratio of the Gaussian task."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from bnre.evaluate import coverage_ranks, evaluate
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
    assert len(ranks) == 2 * 1000  # member and ensemble (the same, with one member)
    assert np.array_equal(ranks[ranks.replicate == "0"]["rank"], ranks[ranks.replicate == "ensemble"]["rank"])


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


def test_hdr_size_matches_gaussian_disc_area():
    # Away from the box edges the gamma-HDR of N(x, s^2 I) is a disc of area
    # -2 pi s^2 log(1 - gamma); the prior box has area 4.
    task = Gaussian(sigma=0.1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.3, 0.3, size=(200, 2)).astype(np.float32)
    theta = (x + 0.1 * rng.standard_normal(x.shape)).astype(np.float32)
    _, curves, _ = evaluate(task, [ExactRatio(task)], theta, x, bins=200)
    c = curves[curves.replicate == "0"].set_index("level")
    for level in (0.3, 0.5, 0.8, 0.9):
        area = -2 * math.pi * 0.1**2 * math.log(1 - level)
        assert c.loc[level, "hdr_size"] == pytest.approx(area / 4, rel=0.03)
    assert c.loc[0.0, "hdr_size"] == 0.0 and c.loc[1.0, "hdr_size"] <= 1.0


def test_posterior_mean_is_unbiased_for_exact_posterior(test_pairs):
    task = Gaussian()
    metrics, _, _ = evaluate(task, [ExactRatio(task)], *test_pairs, bins=60)
    m = metrics_of(metrics, "0")
    for label in task.labels:
        # the posterior mean is unbiased over the joint; its error variance is the
        # expected posterior variance (both about sigma^2 = 0.04 minus truncation)
        assert abs(m[f"posterior_mean_bias_{label}"]) < 3 * math.sqrt(0.04 / 1000)
        assert m[f"posterior_mean_variance_{label}"] == pytest.approx(m[f"posterior_std_{label}"] ** 2, rel=0.15)
    assert m["hdr_size_0.50"] < m["hdr_size_0.90"] < m["hdr_size_0.95"]


def test_coverage_ranks_equal_those_of_the_full_evaluation(test_pairs):
    task = Gaussian()
    torch.manual_seed(1)
    members = [build_estimator(task, [16], "SELU").eval() for _ in range(2)]
    theta, x = test_pairs[0][:100], test_pairs[1][:100]
    fast = coverage_ranks(task, members, theta, x, bins=25)
    _, _, table = evaluate(task, members, theta, x, bins=25)
    for i, name in enumerate(["0", "1", "ensemble"]):
        assert np.allclose(fast[i].numpy(), table[table.replicate == name]["rank"].values, atol=1e-6)


def test_monte_carlo_coverage_agrees_with_grid(test_pairs):
    task = Gaussian()
    theta, x = test_pairs[0][:300], test_pairs[1][:300]
    grid_metrics, _, _ = evaluate(task, [ExactRatio(task)], theta, x, bins=60)
    mc_metrics, _, _ = evaluate(task, [ExactRatio(task)], theta, x, bins=60, coverage="mc", mc_samples=800)
    assert metrics_of(mc_metrics, "0")["coverage_auc"] == pytest.approx(metrics_of(grid_metrics, "0")["coverage_auc"], abs=0.02)
