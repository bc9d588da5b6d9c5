"""Gaussian task: simulator and analytic posterior."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from bnre.evaluation.coverage import grid
from bnre.tasks import Gaussian


def test_noise_has_scale_sigma():
    task = Gaussian()
    theta = task.prior.sample(100_000, np.random.default_rng(0))
    noise = task.simulate(theta, np.random.default_rng(1)) - theta
    assert np.allclose(noise.mean(axis=0), 0, atol=0.005)
    assert np.allclose(noise.std(axis=0), task.sigma, rtol=0.01)


@pytest.mark.parametrize("x", [[0.0, 0.0], [0.9, -1.1], [1.3, 0.2]])
def test_posterior_integrates_to_one(x):
    task = Gaussian()
    cells, log_volume = grid(task.lower, task.upper, 400)
    log_p = task.log_posterior(cells.double(), torch.tensor(x, dtype=torch.float64))
    assert torch.logsumexp(log_p, 0).item() + log_volume == pytest.approx(0.0, abs=1e-3)


def test_posterior_matches_bayes_rule_on_a_grid():
    task = Gaussian()
    x = torch.tensor([0.3, -0.95], dtype=torch.float64)
    cells, log_volume = grid(task.lower, task.upper, 300)
    cells = cells.double()
    log_likelihood = (-0.5 * ((x - cells) / task.sigma) ** 2).sum(-1)
    log_bayes = log_likelihood - torch.logsumexp(log_likelihood, 0) - log_volume
    assert torch.allclose(task.log_posterior(cells, x), log_bayes, atol=1e-3)


def test_posterior_is_zero_outside_box():
    task = Gaussian()
    assert task.log_posterior(torch.tensor([1.5, 0.0]), torch.tensor([0.0, 0.0])).item() == -math.inf


@pytest.mark.parametrize("theta", [[0.0, 0.0], [0.7, -0.95], [1.2, 0.3]])
def test_likelihood_integrates_to_one_over_x(theta):
    # midpoint rule on theta +- 8 sigma, spacing sigma / 25
    task = Gaussian()
    cells, log_volume = grid(np.array(theta) - 8 * task.sigma, np.array(theta) + 8 * task.sigma, 400)
    log_p = task.log_likelihood(torch.tensor(theta, dtype=torch.float64), cells.double())
    assert torch.logsumexp(log_p, 0).item() + log_volume == pytest.approx(0.0, abs=1e-6)


def test_likelihood_is_the_normal_density():
    task = Gaussian(dim=3, sigma=0.3)
    rng = np.random.default_rng(0)
    theta = task.prior.sample(50, rng)
    x = task.simulate(theta, rng)
    expected = [stats.multivariate_normal(t, task.sigma**2 * np.eye(3)).logpdf(v) for t, v in zip(theta, x)]
    assert np.allclose(task.log_likelihood(torch.as_tensor(theta), torch.as_tensor(x)).numpy(), expected, rtol=1e-12)
