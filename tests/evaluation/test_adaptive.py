"""The adaptive posterior grid (bnre.evaluation.adaptive) against exact posteriors and the uniform grid."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom, kstest, norm

from bnre.evaluation.adaptive import CORRECTION_BOUND, Refinement, adaptive_pass, mass_correction, refine
from bnre.evaluation.diagnostics import evaluate_exact, exact_log_posterior
from bnre.evaluation.grids import UniformGrid, posterior_pass
from bnre.evaluation.partition import hpd_ranks, log_masses, log_normaliser
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian, get_task

OSCILLATOR = "examples/oscillator/task.py:DampedOscillator"

#: A posterior 22 times narrower than a cell of the default uniform grid (90 bins over [-1, 1]).
NARROW_SIGMA = 0.001


def pairs(task, n, seed=5):
    theta, x = simulate_range(task, "test", seed=seed, start=0, stop=n)
    return theta, x


@pytest.mark.parametrize(
    "name, n",
    [("gaussian", 1000), ("narrow", 1000), ("two_moons", 1000), ("weinberg", 1000), ("slcp", 600), (OSCILLATOR, 600)],
)
def test_the_exact_posterior_is_calibrated_on_the_adaptive_grid(name, n):
    """Ranks uniform (KS p > 0.01), coverage at level 0.01 in its binomial band, AUC in its
    band: the acceptance of the instrument, CI-sized (benchmarks/exact_acceptance.py: 2,000)."""
    task = Gaussian(sigma=NARROW_SIGMA) if name == "narrow" else get_task(name)
    theta, x = pairs(task, n)
    evaluation = evaluate_exact(task, theta, x, 90, grid_spec=Refinement())
    rank = evaluation.pairs["rank"].to_numpy()
    assert kstest(rank, "uniform").pvalue > 0.01
    low, high = binom.ppf(0.005, n, 0.01) / n, binom.ppf(0.995, n, 0.01) / n
    assert low <= (rank < 0.01).mean() <= high
    assert abs(0.5 - rank.mean()) <= 2.58 * math.sqrt(1 / 12 / n)
    metrics = dict(zip(evaluation.metrics.metric, evaluation.metrics.value))
    assert metrics["unresolved_fraction"] <= 0.01


def test_the_uniform_grid_fails_the_narrow_posterior_that_the_adaptive_grid_resolves():
    task = Gaussian(sigma=NARROW_SIGMA)
    theta, x = pairs(task, 300)
    uniform = evaluate_exact(task, theta, x, 90)
    rank = uniform.pairs["rank"].to_numpy()
    assert (rank == 0).mean() > 0.5  # the truth denser than every cell centre
    metrics = dict(zip(uniform.metrics.metric, uniform.metrics.value))
    assert metrics["unresolved_fraction"] > 0.5


def test_adaptive_ranks_agree_with_a_fine_uniform_grid_on_a_broad_posterior():
    task = Gaussian(sigma=0.3)
    theta, x = pairs(task, 200)
    adaptive = evaluate_exact(task, theta, x, 90, grid_spec=Refinement()).pairs["rank"].to_numpy()
    uniform = evaluate_exact(task, theta, x, 300).pairs["rank"].to_numpy()
    assert np.abs(adaptive - uniform).max() < 5e-3


def test_normaliser_and_ranks_of_a_narrow_gaussian_match_their_closed_forms():
    """N(x, s^2 I) on [-1, 1]^2 with x well inside: Z = 2 pi s^2 and r = 1 - exp(-d^2 / 2 s^2)."""
    sigma = NARROW_SIGMA
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.uniform(-0.9, 0.9, size=(40, 2)))
    distance = torch.as_tensor(rng.uniform(0, 3, size=40))
    angle = torch.as_tensor(rng.uniform(0, 2 * np.pi, size=40))
    theta = x + sigma * distance[:, None] * torch.stack([angle.cos(), angle.sin()], -1)

    def log_density(q, rows):
        return (-0.5 * ((q - x[rows, None]) / sigma) ** 2).sum(-1)[None]

    log_true = -0.5 * distance[None] ** 2
    (batch,) = adaptive_pass(log_density, 40, [-1, -1], [1, 1], Refinement(), log_true, rows=10**6, theta_true=theta)
    mass = log_masses(batch.log_density, batch.partition).exp()
    log_z = log_normaliser(batch.log_density, batch.partition)[0]
    assert log_z.numpy() == pytest.approx(np.full(40, math.log(2 * math.pi * sigma**2)), abs=0.015)
    rank = hpd_ranks(batch.log_density, log_true, mass)[0]
    assert rank.numpy() == pytest.approx(1 - np.exp(-0.5 * distance.numpy() ** 2), abs=0.01)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_the_cells_tile_the_box_within_the_budget(dim):
    task = Gaussian(dim=dim, sigma=0.01)
    theta, x = pairs(task, 4)
    x = torch.as_tensor(x).double()
    exact = exact_log_posterior(task, x)
    settings = Refinement(cells=2048)
    batch = refine(exact, slice(0, 4), task.lower, task.upper, settings)
    assert batch.evaluations <= settings.cells
    partition = batch.partition
    assert partition.log_volume.exp().sum(-1).numpy() == pytest.approx([2.0**dim] * 4)
    points = torch.rand(4, 500, dim, dtype=torch.float64) * 2 - 1
    inside = [partition.contains(points[:, j]).sum(-1) for j in range(500)]
    assert all((count == 1).all() for count in inside)  # no overlap, no gap


def test_refinement_stops_early_when_every_score_is_below_the_tolerance():
    task = get_task("weinberg")  # 1-D, broad: cheap to resolve
    theta, x = pairs(task, 20)
    evaluation = evaluate_exact(task, theta, x, 90, grid_spec=Refinement())
    metrics = dict(zip(evaluation.metrics.metric, evaluation.metrics.value))
    assert metrics["grid_evaluations"] < Refinement().budget(1)


def test_estimators_and_exact_posterior_share_the_cells():
    task = Gaussian(sigma=0.01)
    theta, x = pairs(task, 6)
    theta, x = torch.as_tensor(theta).double(), torch.as_tensor(x).double()
    exact = exact_log_posterior(task, x)

    def wide(q, rows):  # an "estimator" twice as wide as the exact posterior
        return (task.prior.log_prob(q) + task.log_likelihood(q, x[rows][:, None]) / 4)[None].double()

    log_true = wide(theta[:, None].float(), slice(0, 6))[..., 0]
    (batch,) = posterior_pass(wide, 6, task.lower, task.upper, Refinement(cells=4096), 10**6, log_true, exact, theta)
    assert batch.log_density.shape[-1] == batch.log_exact.shape[-1] == batch.partition.cells
    # the exact posterior at the very cells of the estimators' partition
    centre = batch.partition.centre
    assert torch.equal(batch.log_exact, exact(centre, slice(0, 6)))
    assert torch.allclose(batch.log_density, wide(centre.float(), slice(0, 6)), atol=1e-4)
    (uniform,) = posterior_pass(wide, 6, task.lower, task.upper, UniformGrid(20), 10**6, exact=exact)
    assert uniform.partition.cells == 400 and uniform.log_exact.shape == (1, 6, 400)


@pytest.mark.parametrize(
    "options, key",
    [
        (dict(coarse_bins=1), "coarse_bins"),
        (dict(depth=0), "refine_depth"),
        (dict(depth=31), "refine_depth"),
        (dict(tolerance=0.0), "refine_tolerance"),
        (dict(tolerance=1.0), "refine_tolerance"),
        (dict(cells=16, coarse_bins=16), "refine_cells"),
    ],
)
def test_out_of_range_settings_are_refused_naming_the_key(options, key):
    with pytest.raises(ValueError, match=key):
        Refinement(**options)


def test_a_budget_too_small_for_a_coarse_grid_in_many_dimensions_is_refused():
    with pytest.raises(ValueError, match="refine_cells"):
        Refinement(cells=40, coarse_bins=4).coarse(dim=5)


def test_a_mode_whose_peak_lies_in_a_cell_that_reads_low_is_found():
    """Two modes, skewed along x (split normal, sd 0.05 to the left of the peak and 0.01 to
    the right), broad along y. The second mode, away from the truth, peaks just right of a
    coarse cell's edge: that cell's centre reads 14 nats below the peak and the one to its
    left 1 nat below, so only the neighbour's level reveals the mass the cell holds (about a
    third of the mode's; the M/G/1 flows' case). Z has a closed form."""
    left, right, sd_y = 0.05, 0.01, 0.3
    edge = -1 + 6 * 2 / 16  # an edge of the 16-bin coarse grid on [-1, 1]
    peaks = torch.tensor([[0.3, 0.1], [edge + 0.01, -0.2]], dtype=torch.float64)

    def log_density(q, rows):
        dx = q[..., None, 0] - peaks[:, 0]
        sx = torch.where(dx < 0, torch.tensor(left), torch.tensor(right))
        log_mode = -0.5 * (dx / sx) ** 2 - 0.5 * ((q[..., None, 1] - peaks[:, 1]) / sd_y) ** 2
        return log_mode.logsumexp(-1)[None]

    y_mass = [sd_y * math.sqrt(2 * math.pi) * (norm.cdf((1 - p) / sd_y) - norm.cdf((-1 - p) / sd_y)) for p in peaks[:, 1].tolist()]
    z = sum(math.sqrt(2 * math.pi) / 2 * (left + right) * m for m in y_mass)
    theta = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    log_true = log_density(theta[:, None], slice(0, 1))[..., 0]
    batch = refine(log_density, slice(0, 1), [-1, -1], [1, 1], Refinement(cells=2048), log_true, theta_true=theta)
    log_z = float(log_normaliser(batch.log_density, batch.partition)[0, 0])
    assert log_z == pytest.approx(math.log(z), abs=0.02), log_z - math.log(z)


@pytest.mark.parametrize("slope, bend", [(0.0, -0.8), (1.2, 0.0), (-0.9, 0.5), (0.4, -0.3)])
def test_the_mass_correction_is_the_log_integral_of_a_quadratic_to_fourth_order(slope, bend):
    """l(t) = g t + h t^2 / 2 across |t| <= w / 2: the correction from l(-w), l(0), l(w) is
    log(integral of e^l / w) up to O(w^4): halving w divides its error by about 16."""

    def error(w):
        t = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000 * w - w / 2
        exact = float(torch.logsumexp(slope * t + bend * t**2 / 2, 0) - math.log(len(t)))
        values = [slope * s * w + bend * (s * w) ** 2 / 2 for s in (-1, 0, 1)]
        below, centre, above = (torch.tensor(v, dtype=torch.float64) for v in values)
        return abs(float(mass_correction(below, centre, above)) - exact)

    assert error(1.0) < 2e-3
    assert error(0.5) < error(1.0) / 10


def test_the_mass_correction_is_bounded_and_zero_where_a_value_is_missing():
    below, centre, above = torch.tensor([0.0, float("nan"), -40.0]), torch.tensor([0.0, 0.0, 0.0]), torch.tensor([30.0, 1.0, -40.0])
    correction = mass_correction(below, centre, above)
    assert correction.tolist() == [CORRECTION_BOUND, 0.0, -CORRECTION_BOUND]


def test_the_mass_correction_takes_the_midpoint_bias_out_of_a_broad_posterior():
    """A Gaussian of sd 0.2 on [-1, 1]^2 at 1,600 evaluations: with the correction, log Z and
    the ranks are far closer to their closed forms than the midpoint rule's (whose mass
    near the peak is too high, so its ranks are too high on average)."""
    sigma, n = 0.2, 48
    rng = np.random.default_rng(1)
    centre = torch.as_tensor(rng.uniform(-0.3, 0.3, size=(n, 2)))
    distance = torch.as_tensor(rng.uniform(0.2, 2.5, size=n))
    angle = torch.as_tensor(rng.uniform(0, 2 * np.pi, size=n))
    theta = centre + sigma * distance[:, None] * torch.stack([angle.cos(), angle.sin()], -1)

    def log_density(q, rows):
        return (-0.5 * ((q - centre[rows, None]) / sigma) ** 2).sum(-1)[None]

    log_true = -0.5 * distance[None] ** 2
    batch = refine(log_density, slice(0, n), [-1, -1], [1, 1], Refinement(cells=1600), log_true, theta_true=theta)
    inside = [math.prod(norm.cdf((1 - c) / sigma) - norm.cdf((-1 - c) / sigma) for c in row) for row in centre.tolist()]
    log_z = np.log(2 * math.pi * sigma**2 * np.asarray(inside))
    rank = 1 - np.exp(-0.5 * distance.numpy() ** 2)  # every HPD region lies well inside the box
    errors = {}
    for label, correction in (("midpoint", None), ("corrected", batch.log_mass_correction)):
        mass = log_masses(batch.log_density, batch.partition, correction).exp()
        z_error = np.abs(log_normaliser(batch.log_density, batch.partition, correction)[0].numpy() - log_z).max()
        rank_error = hpd_ranks(batch.log_density, log_true, mass)[0].numpy() - rank
        errors[label] = z_error, abs(rank_error.mean()), np.abs(rank_error).mean()
    (z_mid, bias_mid, rank_mid), (z_corr, bias_corr, rank_corr) = errors["midpoint"], errors["corrected"]
    assert z_corr < z_mid / 10 and z_corr < 2e-3, errors
    assert bias_corr < bias_mid / 5 and rank_corr < rank_mid / 3, errors


def test_the_diagnostics_read_the_corrected_masses():
    """Through evaluate_exact (posterior_pass, PosteriorBatch, grid_diagnostics): the exact
    posterior's mean log posterior on a broad Gaussian at 1,600 evaluations matches its
    closed form within 1.6e-3 nats; read with midpoint masses it is 3.2e-3 off."""
    task = Gaussian(sigma=0.2)
    theta, x = pairs(task, 64)
    closed_form = float(task.log_posterior(torch.as_tensor(theta).double(), torch.as_tensor(x).double()).mean())
    evaluation = evaluate_exact(task, theta, x, 90, grid_spec=Refinement(cells=1600))
    metrics = dict(zip(evaluation.metrics.metric, evaluation.metrics.value))
    assert abs(metrics["log_posterior"] - closed_form) < 1.6e-3
