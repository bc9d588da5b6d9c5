"""Monte Carlo coverage agrees with grid coverage on the same posterior."""

import numpy as np
import torch

from bnre.evaluation.coverage import coverage_auc, grid, grid_ranks
from bnre.evaluation.mcmc import mc_ranks, metropolis
from bnre.methods import build_estimator
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian


def compare(log_density_fn, task, theta, x, bins=80):
    cells, _ = grid(task.lower, task.upper, bins)
    lower = torch.as_tensor(task.lower, dtype=torch.float32)
    upper = torch.as_tensor(task.upper, dtype=torch.float32)
    with torch.no_grad():
        grid_r, _ = grid_ranks(lambda q, rows: log_density_fn(q, x[rows]), theta, cells)
    density = lambda q: log_density_fn(q, x)  # noqa: E731
    samples = metropolis(density, lower, upper, (len(theta), 8), samples=150, burn=300, thin=2, generator=torch.Generator().manual_seed(0))
    return grid_r.numpy(), mc_ranks(density, theta, samples).numpy()


def test_mc_ranks_match_grid_ranks_for_exact_posterior():
    task = Gaussian()
    theta, x = map(torch.as_tensor, simulate_range(task, "test", 5, 0, 300))
    grid_r, mc_r = compare(lambda q, xx: task.log_posterior(q, xx[:, None]), task, theta, x)
    # per pair within a few Monte Carlo standard errors (S = 1200 correlated samples)
    error = np.sqrt(grid_r * (1 - grid_r) / 300) + 0.01
    assert np.mean(np.abs(grid_r - mc_r) < 3 * error) > 0.95
    assert abs(coverage_auc(grid_r) - coverage_auc(mc_r)) < 0.02


def test_mc_ranks_match_grid_ranks_for_an_estimator():
    task = Gaussian()
    torch.manual_seed(0)
    estimator = build_estimator(task, [32, 32], "SELU").eval()
    theta, x = map(torch.as_tensor, simulate_range(task, "test", 6, 0, 200))
    with torch.no_grad():
        embedding = estimator.embed(x)

    def log_density(q, xx):
        e = estimator.embed(xx) if xx is not x else embedding
        return estimator.head_log_ratio(q, e[:, None]) + task.prior.log_prob(q)

    grid_r, mc_r = compare(log_density, task, theta, x)
    assert np.mean(np.abs(grid_r - mc_r) < 3 * (np.sqrt(grid_r * (1 - grid_r) / 300) + 0.01)) > 0.95
    assert abs(coverage_auc(grid_r) - coverage_auc(mc_r)) < 0.02
