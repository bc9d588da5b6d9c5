"""Grid coverage against the exact posterior of the Gaussian task (ground truth)."""

import numpy as np
import pytest
import torch

from bnre.evaluation.coverage import (
    PAPER_LEVELS,
    clopper_pearson,
    coverage_auc,
    coverage_curve,
    grid,
    grid_ranks,
    ranks,
)
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian

N = 2000


@pytest.fixture(scope="module")
def gaussian_pairs():
    task = Gaussian()
    theta, x = simulate_range(task, "test", seed=11, start=0, stop=N)
    return task, torch.as_tensor(theta), torch.as_tensor(x)


def exact_ranks(task, theta, x, scale, bins=60):
    cells, _ = grid(task.lower, task.upper, bins)

    def log_density(query, rows):
        return task.log_posterior(query, x[rows][:, None], scale=scale)

    r, _ = grid_ranks(log_density, theta, cells)
    return r.numpy()


def test_exact_posterior_is_calibrated(gaussian_pairs):
    task, theta, x = gaussian_pairs
    r = exact_ranks(task, theta, x, scale=1.0)
    coverage = coverage_curve(r, PAPER_LEVELS)
    lower, upper = clopper_pearson(np.round(coverage * N), N, confidence=0.99)
    assert np.all((lower <= PAPER_LEVELS) & (PAPER_LEVELS <= upper)), coverage
    assert abs(coverage_auc(r)) < 0.02


def test_too_narrow_posterior_is_overconfident(gaussian_pairs):
    task, theta, x = gaussian_pairs
    r = exact_ranks(task, theta, x, scale=0.5)
    coverage = coverage_curve(r, PAPER_LEVELS)
    _, upper = clopper_pearson(np.round(coverage * N), N, confidence=0.99)
    middle = (PAPER_LEVELS >= 0.2) & (PAPER_LEVELS <= 0.9)
    assert np.all(upper[middle] < PAPER_LEVELS[middle]), coverage
    assert coverage_auc(r) < -0.1


def test_too_wide_posterior_is_conservative(gaussian_pairs):
    task, theta, x = gaussian_pairs
    r = exact_ranks(task, theta, x, scale=2.0)
    coverage = coverage_curve(r, PAPER_LEVELS)
    lower, _ = clopper_pearson(np.round(coverage * N), N, confidence=0.99)
    middle = (PAPER_LEVELS >= 0.1) & (PAPER_LEVELS <= 0.8)
    assert np.all(lower[middle] > PAPER_LEVELS[middle]), coverage
    assert coverage_auc(r) > 0.1


def test_rank_is_mass_of_strictly_denser_cells():
    log_grid = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    # truth as dense as the 0.3 cell: only the 0.4 cell is strictly denser
    assert ranks(log_grid, torch.log(torch.tensor([0.3]))).item() == pytest.approx(0.4)
    # densest: nothing is denser; least dense: everything else is
    assert ranks(log_grid, torch.log(torch.tensor([0.5]))).item() == 0.0
    assert ranks(log_grid, torch.log(torch.tensor([0.1]))).item() == pytest.approx(0.9)


def test_rank_below_level_iff_truth_in_highest_density_region():
    rng = np.random.default_rng(0)
    mass = rng.dirichlet(np.ones(50))
    order = np.argsort(-mass)
    for level in (0.1, 0.5, 0.9):
        cumulative = np.cumsum(mass[order])
        region = set(order[: np.searchsorted(cumulative, level) + 1].tolist())
        for cell in range(50):
            r = ranks(torch.log(torch.as_tensor(mass))[None], torch.log(torch.as_tensor(mass[cell : cell + 1]))).item()
            assert (r < level) == (cell in region)


def test_auc_is_the_signed_area_of_the_curve():
    r = np.random.default_rng(1).beta(2, 3, size=5000)
    levels = np.linspace(0, 1, 100001)
    area = np.trapezoid(coverage_curve(r, levels) - levels, levels)
    assert coverage_auc(r) == pytest.approx(area, abs=1e-4)


def test_grid_centres_and_volume():
    cells, log_volume = grid(np.array([0.0, -1.0]), np.array([1.0, 1.0]), 4)
    assert cells.shape == (16, 2)
    assert torch.allclose(cells[:4, 1], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert log_volume == pytest.approx(np.log(0.25 * 0.5))
    with pytest.raises(ValueError, match="bins"):
        grid(np.zeros(1), np.ones(1), 1)


def test_clopper_pearson_contains_proportion():
    lower, upper = clopper_pearson(np.array([0, 50, 100]), 100)
    assert lower[0] == 0 and upper[2] == 1
    assert lower[1] < 0.5 < upper[1]
