"""Posteriors on partitions of unequal cells against closed forms (bnre.evaluation.partition)."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from bnre.evaluation.calibration import marginal_hpd_ranks as uniform_marginal_hpd_ranks
from bnre.evaluation.calibration import sample_grid, sbc_ranks
from bnre.evaluation.coverage import cell_mass, grid, hdr_sizes as uniform_hdr_sizes
from bnre.evaluation.partition import (
    Partition,
    hdr_sizes,
    hpd_ranks,
    log_masses,
    log_normaliser,
    marginal_cdf,
    marginal_density,
    marginal_hpd_ranks,
    marginal_quantiles,
    moments,
    regular_partition,
    sample,
    unresolved,
)

# A 1-D partition of [0, 4] into cells of widths 2, 1, 0.5, 0.25, 0.25 and known densities.
WIDTHS = np.array([2.0, 1.0, 0.5, 0.25, 0.25])
DENSITIES = np.array([0.1, 0.2, 0.6, 0.8, 0.4])  # integrates to 1: 0.2 + 0.2 + 0.3 + 0.2 + 0.1


def unequal_1d():
    edges = np.concatenate([[0.0], np.cumsum(WIDTHS)])
    centre = torch.as_tensor((edges[:-1] + edges[1:]) / 2)[None, :, None]
    width = torch.as_tensor(WIDTHS)[None, :, None]
    log_density = torch.as_tensor(np.log(DENSITIES * 7.0))[None, None]  # unnormalised by 7
    return Partition(centre, width), log_density, edges


def test_masses_and_normaliser_weigh_each_cell_by_its_volume():
    partition, log_density, _ = unequal_1d()
    mass = log_masses(log_density, partition).exp()[0, 0]
    assert mass.numpy() == pytest.approx(DENSITIES * WIDTHS)
    assert log_normaliser(log_density, partition).item() == pytest.approx(math.log(7.0))


def test_rank_is_the_mass_strictly_denser_than_the_truth():
    partition, log_density, _ = unequal_1d()
    mass = log_masses(log_density, partition).exp()
    # truth of density 0.6 (the third cell): denser are the fourth only (0.8, mass 0.2)
    truth = torch.tensor([[math.log(0.6 * 7.0)]])
    assert hpd_ranks(log_density, truth, mass).item() == pytest.approx(0.2)
    truth = torch.tensor([[math.log(0.1 * 7.0)]])  # denser: all but the first, 0.8
    assert hpd_ranks(log_density, truth, mass).item() == pytest.approx(0.8)


def test_hdr_size_is_the_volume_of_the_densest_cells_not_their_count():
    partition, log_density, _ = unequal_1d()
    mass = log_masses(log_density, partition).exp()
    levels = np.array([0.0, 0.2, 0.5, 0.7, 0.9, 1.0])
    # by density: 0.8 (w .25, m .2), 0.6 (w .5, m .3), 0.4 (w .25, m .1), 0.2 (w 1, m .2), 0.1 (w 2, m .2)
    expected = np.array([0.0, 0.25, 0.75, 2.0, 4.0, 4.0]) / 4.0
    size = hdr_sizes(log_density, mass, partition, 4.0, levels)[0, 0]
    assert size.numpy() == pytest.approx(expected)


def test_marginal_cdf_density_and_quantiles_of_a_piecewise_constant_density():
    partition, log_density, edges = unequal_1d()
    mass = log_masses(log_density, partition).exp()
    cdf_at_edges = np.concatenate([[0.0], np.cumsum(DENSITIES * WIDTHS)])
    theta = torch.as_tensor(edges[1:-1])[:, None]
    several = Partition(partition.centre.expand(len(theta), -1, -1), partition.width.expand(len(theta), -1, -1))
    cdf = marginal_cdf(mass.expand(1, len(theta), -1), several, theta)[0, :, 0]
    assert cdf.numpy() == pytest.approx(cdf_at_edges[1:-1])
    points, density = marginal_density(mass, partition, 0)
    inside = points.diff(dim=-1)[0] > 0
    assert density[0, 0][inside].numpy() == pytest.approx(DENSITIES)
    q = marginal_quantiles(mass, partition, np.array([0.05, 0.3, 0.8]))[0, 0, 0]
    # 0.05 at 0.05 / 0.1, 0.3 half-way through the second cell, 0.8 at 3.5 + 0.1 / 0.8
    assert q.numpy() == pytest.approx([0.5, 2.5, 3.625])


def narrow_gaussian_partition(sigma: float, mean, seed: int = 0):
    """A partition of [-1, 1]^2 into unequal cells, a coarse 8x8 grid whose cells of largest
    Gaussian mass are halved along a random (or the longer) axis until finer than sigma / 4,
    with the log density of N(mean, sigma^2 I) at the centres."""
    rng = np.random.default_rng(seed)
    axes = (np.arange(8) + 0.5) / 4 - 1
    centres = np.stack(np.meshgrid(axes, axes, indexing="ij"), -1).reshape(-1, 2)
    widths = np.full_like(centres, 0.25)
    mean = np.asarray(mean, np.float64)
    while True:
        # halve every cell of Gaussian mass above 1e-7 that is still wider than sigma / 4
        mass = np.prod(norm.cdf((centres + widths / 2 - mean) / sigma) - norm.cdf((centres - widths / 2 - mean) / sigma), -1)
        split = (mass > 1e-7) & (widths.max(-1) > sigma / 4)
        if not split.any():
            break
        c, w = centres[split], widths[split]
        d = np.where(w[:, 0] == w[:, 1], rng.integers(2, size=len(w)), np.argmax(w, -1))
        step = np.zeros_like(w)
        step[np.arange(len(w)), d] = w[np.arange(len(w)), d] / 4
        half = w.copy()
        half[np.arange(len(w)), d] /= 2
        centres = np.concatenate([centres[~split], c - step, c + step])
        widths = np.concatenate([widths[~split], half, half])
    cells = list(zip(centres, widths))
    centre = torch.as_tensor(np.array([c for c, _ in cells]))[None]
    width = torch.as_tensor(np.array([w for _, w in cells]))[None]
    log_density = torch.as_tensor(-0.5 * (((centre[0].numpy() - mean) / sigma) ** 2).sum(-1))[None, None]
    return Partition(centre, width), log_density


def test_a_posterior_narrower_than_a_coarse_cell_has_its_closed_form_rank_and_normaliser():
    sigma, mean = 0.004, np.array([0.2501, -0.13])  # coarse cells are 0.25 wide: 60 sigma
    partition, log_density = narrow_gaussian_partition(sigma, mean)
    assert partition.log_volume.exp().sum().item() == pytest.approx(4.0)
    assert partition.width.min().item() < sigma
    log_z = log_normaliser(log_density, partition).item()
    assert log_z == pytest.approx(math.log(2 * math.pi * sigma**2), abs=2e-3)
    mass = log_masses(log_density, partition).exp()
    for distance in (0.3, 1.0, 2.0):
        theta = torch.as_tensor(mean + np.array([distance * sigma, 0.0]))
        truth = torch.tensor([[-0.5 * distance**2]])
        # the HPD region of an isotropic 2-D Gaussian is a disc: r = 1 - exp(-d^2 / 2)
        assert hpd_ranks(log_density, truth, mass).item() == pytest.approx(1 - math.exp(-0.5 * distance**2), abs=0.01)
        assert marginal_cdf(mass, partition, theta[None])[0, 0, 0].item() == pytest.approx(norm.cdf(distance), abs=0.01)
        # a piecewise-constant marginal: a whole interval of the sweep is in or out
        points, density = marginal_density(mass, partition, 0)
        step = (density * points.diff(dim=-1)).max().item()
        assert marginal_hpd_ranks(mass, partition, theta[None])[0, 0, 0].item() == pytest.approx(
            2 * norm.cdf(distance) - 1, abs=step
        )
    mean_hat, variance = moments(mass, partition)
    assert mean_hat[0, 0].numpy() == pytest.approx(mean, abs=1e-4)
    assert np.sqrt(variance[0, 0].numpy()) == pytest.approx([sigma, sigma], rel=0.02)
    interval = marginal_quantiles(mass, partition, np.array([0.05, 0.95]))[0, 0]
    assert (interval[:, 1] - interval[:, 0]).numpy() == pytest.approx([2 * 1.645 * sigma] * 2, rel=0.02)


def test_four_modes_narrower_than_a_cell_each_keep_the_closed_form_rank():
    sigma = 0.004
    modes = np.array([[0.5, 0.5], [-0.5, 0.5], [0.5, -0.5], [-0.5, -0.5]]) + 0.0123
    parts = [narrow_gaussian_partition(sigma, m, seed=i) for i, m in enumerate(modes)]
    # one partition: each mode's refined quadrant; the log density is the mixture's
    centre, width = [], []
    for (p, _), m in zip(parts, modes):
        quadrant = ((p.centre[0] > 0) == torch.as_tensor(m > 0)).all(dim=-1)
        centre.append(p.centre[0][quadrant])
        width.append(p.width[0][quadrant])
    partition = Partition(torch.cat(centre)[None], torch.cat(width)[None])
    assert partition.log_volume.exp().sum().item() == pytest.approx(4.0)
    c = partition.centre[0].numpy()
    log_density = torch.as_tensor(
        np.logaddexp.reduce([-0.5 * (((c - m) / sigma) ** 2).sum(-1) for m in modes], axis=0)
    )[None, None]
    mass = log_masses(log_density, partition).exp()
    quarter = mass[0, 0][(partition.centre[0] > 0).all(dim=-1)].sum().item()
    assert quarter == pytest.approx(0.25, abs=1e-3)
    truth = torch.tensor([[-0.5 * 1.5**2]])  # 1.5 sigma from one mode: each mode's disc of radius 1.5 sigma
    assert hpd_ranks(log_density, truth, mass).item() == pytest.approx(1 - math.exp(-0.5 * 1.5**2), abs=0.01)


def test_on_the_uniform_grid_the_partition_reproduces_the_uniform_grid_diagnostics():
    lower, upper, bins = np.array([-1.0, 0.0]), np.array([1.0, 3.0]), 12
    cells, _ = grid(lower, upper, bins)
    partition = regular_partition(lower, upper, bins)
    assert partition.centre[0].float().numpy() == pytest.approx(cells.numpy(), abs=1e-6)
    rng = np.random.default_rng(0)
    log_density = torch.as_tensor(rng.normal(0, 2, size=(2, 5, bins**2)))
    theta = torch.as_tensor(rng.uniform(lower, upper, size=(5, 2)))
    mass = log_masses(log_density, partition).exp()
    assert mass.numpy() == pytest.approx(cell_mass(log_density).numpy())
    assert marginal_cdf(mass, partition, theta).numpy() == pytest.approx(sbc_ranks(mass, theta, lower, upper, bins).numpy())
    assert marginal_hpd_ranks(mass, partition, theta).numpy() == pytest.approx(
        uniform_marginal_hpd_ranks(mass, theta, lower, upper, bins).numpy(), abs=1e-12
    )
    levels = np.linspace(0, 1, 11)
    assert hdr_sizes(log_density, mass, partition, 6.0, levels).numpy() == pytest.approx(
        uniform_hdr_sizes(mass.reshape(-1, bins**2), levels).reshape(2, 5, -1).numpy()
    )
    draws = sample(mass, partition, 50, torch.Generator().manual_seed(3))
    reference = sample_grid(mass, cells, lower, upper, bins, 50, torch.Generator().manual_seed(3))
    assert draws.numpy() == pytest.approx(reference.numpy(), abs=1e-6)


def test_draws_follow_the_cell_masses_and_stay_in_their_cells():
    partition, log_density, edges = unequal_1d()
    mass = log_masses(log_density, partition).exp()
    draws = sample(mass, partition, 200_000, torch.Generator().manual_seed(0))[0, 0, :, 0].numpy()
    counts, _ = np.histogram(draws, bins=edges)
    assert counts / len(draws) == pytest.approx(DENSITIES * WIDTHS, abs=0.005)
    inside_third = draws[(draws > edges[2]) & (draws < edges[3])]
    assert np.histogram(inside_third, bins=4)[0] / len(inside_third) == pytest.approx([0.25] * 4, abs=0.01)


def test_a_truth_denser_than_every_cell_or_alone_with_the_mass_is_unresolved():
    partition, log_density, _ = unequal_1d()
    mass = log_masses(log_density, partition).exp()
    theta = torch.tensor([[3.6], [3.6], [0.5]])
    several = Partition(partition.centre.expand(3, -1, -1), partition.width.expand(3, -1, -1))
    truth = torch.tensor([[math.log(0.9 * 7), math.log(0.5 * 7), math.log(0.05 * 7)]])
    flags = unresolved(log_density.expand(1, 3, -1), truth, mass.expand(1, 3, -1), several, theta)
    assert flags.tolist() == [[True, False, False]]
    # one cell holding most of the mass, the truth in it
    peaked = torch.as_tensor(np.log([1e-3, 1e-3, 1e-3, 100.0, 1e-3]))[None, None]
    flags = unresolved(peaked, peaked[..., 3] - 0.1, log_masses(peaked, partition).exp(), partition, torch.tensor([[3.6]]))
    assert flags.tolist() == [[True]]
