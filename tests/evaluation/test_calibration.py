"""Grid calibration diagnostics against ground truth: the exact Gaussian posterior,
hand-computed grids and closed-form divergences."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from bnre.evaluation.calibration import (
    ecdf_difference,
    kl_divergence,
    marginal_hpd_ranks,
    marginal_masses,
    sample_grid,
    sbc_ranks,
    tarp_auc,
    tarp_coverage,
    tarp_credibility,
    total_variation,
    uniformity_pvalue,
)
from bnre.evaluation.coverage import PAPER_LEVELS, cell_mass, clopper_pearson, coverage_auc, coverage_curve, grid, grid_moments
from bnre.tasks import Gaussian

N = 1000
BINS = 64
#: exact, too narrow (overconfident), too wide (conservative): the leading estimator dim
SCALES = (1.0, 0.5, 2.0)
SAMPLES = 200
#: Dvoretzky–Kiefer–Wolfowitz half-width of a uniform ECDF at 99.9%
DKW = math.sqrt(math.log(2 / 1e-3) / (2 * N))


def simulate(dim: int, seed: int):
    task = Gaussian(dim=dim, sigma=0.2)
    rng = np.random.default_rng(seed)
    theta = task.prior.sample(N, rng)
    x = task.simulate(theta, rng)
    return task, torch.as_tensor(theta), torch.as_tensor(x)


def grid_mass(task, x, bins, scales, dtype=torch.float64):
    """Cell masses (len(scales), N, G) of the exact (tempered) posterior."""
    cells, _ = grid(task.lower, task.upper, bins)
    query = cells[None].to(dtype)
    log_p = torch.stack([task.log_posterior(query, x[:, None].to(dtype), scale=s) for s in scales])
    return cells, cell_mass(log_p)


@pytest.fixture(scope="module", params=[1, 2], ids=["dim1", "dim2"])
def tempered(request):
    """Exact and tempered grid posteriors (E=3, N, G) of N prior-predictive pairs, with TARP draws."""
    dim = request.param
    task, theta, x = simulate(dim, seed=10 + dim)
    cells, mass = grid_mass(task, x, BINS, SCALES)
    generator = torch.Generator().manual_seed(dim)
    samples = sample_grid(mass, cells, task.lower, task.upper, BINS, SAMPLES, generator)
    credibility = tarp_credibility(samples, theta, task.lower, task.upper, generator=generator)
    return dict(task=task, theta=theta, x=x, cells=cells, mass=mass, samples=samples, credibility=credibility)


def band(coverage: np.ndarray, confidence: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    return clopper_pearson(np.round(np.asarray(coverage) * N), N, confidence=confidence)


# --- SBC ranks -------------------------------------------------------------------------


def test_sbc_ranks_of_exact_posterior_are_uniform(tempered):
    t = tempered
    r = sbc_ranks(t["mass"], t["theta"], t["task"].lower, t["task"].upper, BINS)
    assert r.shape == (len(SCALES), N, t["task"].theta_dim)
    for d in range(t["task"].theta_dim):
        assert uniformity_pvalue(r[0, :, d]) > 1e-3
        assert np.all(np.abs(ecdf_difference(r[0, :, d], PAPER_LEVELS)) < DKW)


def test_sbc_ranks_of_tempered_posterior_are_not_uniform(tempered):
    t = tempered
    r = sbc_ranks(t["mass"], t["theta"], t["task"].lower, t["task"].upper, BINS)
    levels = np.array([0.1, 0.25, 0.75, 0.9])
    for d in range(t["task"].theta_dim):
        narrow, wide = r[1, :, d], r[2, :, d]
        assert uniformity_pvalue(narrow) < 1e-6
        assert uniformity_pvalue(wide) < 1e-6
        # too narrow: ranks pile up at 0 and 1 (ECDF above the diagonal, then below)
        diff = ecdf_difference(narrow, levels)
        assert diff[0] > DKW and diff[-1] < -DKW, diff
        # too wide: ranks pile up in the middle (the mirror image)
        diff = ecdf_difference(wide, levels)
        assert diff[1] < -DKW and diff[2] > DKW, diff


def test_sbc_ranks_on_hand_built_grid():
    # 3x3 grid over [0, 3] x [-1, 1]; mass[i, j] with i along theta_1, j along theta_2
    table = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=torch.float64) / 45
    mass = table.reshape(1, 9)  # cartesian_prod order: last dimension fastest
    lower, upper = np.array([0.0, -1.0]), np.array([3.0, 1.0])
    theta = torch.tensor([[1.5, 0.2], [0.0, 1.0], [3.0, -1.0], [2.25, -1.0 + 2 / 3]])
    mass = mass.expand(len(theta), 9)
    # marginals: theta_1 row sums (6, 15, 24)/45, theta_2 column sums (12, 15, 18)/45
    expected = torch.tensor(
        [
            [(6 + 0.5 * 15) / 45, (12 + 0.8 * 15) / 45],  # middle cells, 1/2 and 4/5 of the way
            [0.0, 1.0],  # box corners
            [1.0, 0.0],
            [(6 + 15 + 0.25 * 24) / 45, 12 / 45],  # theta_2 on a cell boundary: CDF is continuous
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(sbc_ranks(mass, theta, lower, upper, 3), expected, rtol=0, atol=1e-6)


# --- marginal masses -------------------------------------------------------------------


def test_marginal_masses_of_product_posterior():
    task = Gaussian(dim=3, sigma=0.2)
    bins = 32
    x = torch.tensor([[-0.3, 0.1, 0.85]], dtype=torch.float64)
    cells, _ = grid(task.lower, task.upper, bins)
    mass = cell_mass(task.log_posterior(cells[None].double(), x[:, None]))
    marginals = marginal_masses(mass, bins, 3)
    edges = np.linspace(-1, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for d, m in enumerate(marginals):
        assert m.shape == (1, bins)
        assert m.sum().item() == pytest.approx(1.0, abs=1e-12)
        # the grid factorises: each marginal is the normalised 1-D density at the centres
        density = norm.pdf(centres, x[0, d].item(), 0.2)
        np.testing.assert_allclose(m[0].numpy(), density / density.sum(), rtol=1e-5, atol=1e-9)
        # and the exact truncated-normal cell masses, up to the midpoint rule's O(h^2)
        cdf = norm.cdf(edges, x[0, d].item(), 0.2)
        exact = np.diff(cdf) / (cdf[-1] - cdf[0])
        np.testing.assert_allclose(m[0].numpy(), exact, atol=2e-3)
        assert np.abs(m[0].numpy() - exact).max() > 1e-5  # it is the grid, not the exact masses


def test_marginal_masses_axis_order_on_hand_built_grid():
    table = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)  # not a valid grid: bins differ
    with pytest.raises(ValueError):
        marginal_masses(table.reshape(1, 24), 3, 3)
    table = torch.arange(8, dtype=torch.float64).reshape(2, 2, 2)
    mass = (table / table.sum()).reshape(1, 8)
    m1, m2, m3 = marginal_masses(mass, 2, 3)
    # entries 0..7 = 4 i + 2 j + k; total 28
    torch.testing.assert_close(m1[0], torch.tensor([0 + 1 + 2 + 3, 4 + 5 + 6 + 7], dtype=torch.float64) / 28)
    torch.testing.assert_close(m2[0], torch.tensor([0 + 1 + 4 + 5, 2 + 3 + 6 + 7], dtype=torch.float64) / 28)
    torch.testing.assert_close(m3[0], torch.tensor([0 + 2 + 4 + 6, 1 + 3 + 5 + 7], dtype=torch.float64) / 28)


# --- marginal HPD ranks ----------------------------------------------------------------


def test_marginal_hpd_ranks_on_hand_built_grid():
    table = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=torch.float64) / 45
    lower, upper = np.array([0.0, -1.0]), np.array([3.0, 1.0])
    theta = torch.tensor([[1.5, 0.2], [0.1, 0.9]])
    mass = table.reshape(1, 9).expand(2, 9)
    # marginals (6, 15, 24)/45 and (12, 15, 18)/45
    expected = torch.tensor([[24 / 45, 18 / 45], [39 / 45, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(marginal_hpd_ranks(mass, theta, lower, upper, 3), expected)
    # ties are not strictly denser
    flat = torch.full((1, 9), 1 / 9, dtype=torch.float64)
    assert marginal_hpd_ranks(flat, theta[:1], lower, upper, 3).abs().max().item() == 0.0


@pytest.mark.parametrize("dim, bins", [(1, 256), (2, 128)])
def test_marginal_hpd_ranks_of_exact_posterior_are_uniform(dim, bins):
    task, theta, x = simulate(dim, seed=20 + dim)
    _, mass = grid_mass(task, x, bins, (1.0,), dtype=torch.float32)
    r = marginal_hpd_ranks(mass, theta, task.lower, task.upper, bins)[0]
    for d in range(dim):
        assert uniformity_pvalue(r[:, d]) > 1e-3
        coverage = coverage_curve(r[:, d], PAPER_LEVELS)
        lower, upper = band(coverage)
        assert np.all((lower <= PAPER_LEVELS) & (PAPER_LEVELS <= upper)), coverage


def test_marginal_hpd_coverage_is_conservative_by_at_most_one_cell(tempered):
    # a whole cell is in the region or not, so P(r < gamma) lies in [gamma, gamma + max cell mass]
    t = tempered
    r = marginal_hpd_ranks(t["mass"], t["theta"], t["task"].lower, t["task"].upper, BINS)[0]
    for d, m in enumerate(marginal_masses(t["mass"][0], BINS, t["task"].theta_dim)):
        coverage = coverage_curve(r[:, d], PAPER_LEVELS)
        lower, upper = band(coverage)
        assert np.all(upper >= PAPER_LEVELS), coverage
        assert np.all(lower <= PAPER_LEVELS + m.max().item()), coverage


def test_marginal_hpd_coverage_of_tempered_posterior(tempered):
    t = tempered
    r = marginal_hpd_ranks(t["mass"], t["theta"], t["task"].lower, t["task"].upper, BINS)
    middle = (PAPER_LEVELS >= 0.2) & (PAPER_LEVELS <= 0.8)
    for d in range(t["task"].theta_dim):
        narrow, wide = r[1, :, d], r[2, :, d]
        _, upper = band(coverage_curve(narrow, PAPER_LEVELS))
        assert np.all(upper[middle] < PAPER_LEVELS[middle])
        assert coverage_auc(narrow) < -0.1
        lower, _ = band(coverage_curve(wide, PAPER_LEVELS))
        assert np.all(lower[middle] > PAPER_LEVELS[middle])
        assert coverage_auc(wide) > 0.1


# --- sampling --------------------------------------------------------------------------


def test_sample_grid_moments_and_support():
    task = Gaussian(dim=2, sigma=0.3)
    bins, samples = 8, 100_000
    cells, _ = grid(task.lower, task.upper, bins)
    x = torch.tensor([[0.1, -0.2], [0.9, 0.95], [-0.5, 0.4]], dtype=torch.float64)
    log_p = task.log_posterior(cells[None].double(), x[:, None])
    log_p[:, cells[:, 0] > 0.5] = -math.inf  # cells without mass
    mass = cell_mass(log_p)
    draws = sample_grid(mass, cells, task.lower, task.upper, bins, samples, torch.Generator().manual_seed(0))
    assert draws.shape == (3, samples, 2) and draws.dtype == torch.float64
    assert draws.min() >= -1 and draws.max() <= 1
    index = torch.floor((draws + 1) / 2 * bins).clamp(0, bins - 1).long()
    flat = index[..., 0] * bins + index[..., 1]
    assert torch.all(torch.gather(mass, 1, flat) > 0)
    # cell frequencies are the masses
    counts = torch.zeros_like(mass).scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64)) / samples
    assert torch.all((counts - mass).abs() <= 5 * (mass * (1 - mass) / samples).sqrt() + 1e-12)
    # mean of the centres; variance of the centres plus the uniform jitter w^2 / 12
    mean, variance = grid_moments(mass, cells)
    jitter = (2 / bins) ** 2 / 12
    sample_mean, sample_var = draws.mean(dim=1), draws.var(dim=1)
    centred = draws - sample_mean[:, None]
    var_error = (((centred**4).mean(dim=1) - sample_var**2) / samples).sqrt()
    assert torch.all((sample_mean - mean).abs() < 5 * (sample_var / samples).sqrt())
    assert torch.all((sample_var - variance - jitter).abs() < 5 * var_error)
    assert torch.all((sample_var - variance).abs() > 5 * var_error)  # draws are not the centres


def test_sample_grid_is_reproducible():
    mass = torch.softmax(torch.randn(2, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64), -1)
    cells, _ = grid(np.zeros(2), np.ones(2), 4)
    a = sample_grid(mass, cells, np.zeros(2), np.ones(2), 4, 50, torch.Generator().manual_seed(3))
    b = sample_grid(mass, cells, np.zeros(2), np.ones(2), 4, 50, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- TARP ------------------------------------------------------------------------------


def test_tarp_credibility_by_hand():
    # box [0, 1] x [0, 10]: distances are measured after scaling to the unit square
    lower, upper = np.array([0.0, 0.0]), np.array([1.0, 10.0])
    theta = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    reference = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    # normalised distances to the reference 0.4, 0.6, 0.3, 0.45, 0.5 against the truth's 0.5
    # (unnormalised: 4, 0.6, 0.3, 4.5, 5 against 0.5); the tie is not strictly closer
    samples = torch.tensor([[[0.0, 4.0], [0.6, 0.0], [0.3, 0.0], [0.0, 4.5], [0.0, 5.0]]], dtype=torch.float64)
    f = tarp_credibility(samples, theta, lower, upper, references=reference)
    torch.testing.assert_close(f, torch.tensor([0.6], dtype=torch.float64))
    levels = np.array([0.5, 0.6, 0.61])
    assert tarp_coverage(samples, theta, lower, upper, levels, references=reference).tolist() == [0.0, 0.0, 1.0]
    assert tarp_auc(f) == pytest.approx(-0.1)


def test_tarp_coverage_of_exact_posterior_is_diagonal(tempered):
    t = tempered
    coverage = (t["credibility"][0].numpy()[None, :] < PAPER_LEVELS[:, None]).mean(axis=1)
    lower, upper = band(coverage)
    assert np.all((lower <= PAPER_LEVELS) & (PAPER_LEVELS <= upper)), coverage
    assert abs(tarp_auc(t["credibility"][0])) < 0.03
    assert uniformity_pvalue(t["credibility"][0]) > 1e-3


def test_tarp_coverage_of_tempered_posterior(tempered):
    # a wrong spread bends the TARP curve into an S about alpha = 1/2 (see tarp_coverage)
    t = tempered
    levels = np.array([0.1, 0.25, 0.75, 0.9])
    narrow, wide = t["credibility"][1], t["credibility"][2]
    assert uniformity_pvalue(narrow) < 1e-6 and uniformity_pvalue(wide) < 1e-6
    c = (narrow.numpy()[None] < levels[:, None]).mean(axis=1)
    lower, upper = band(c)
    assert lower[0] > levels[0] and upper[-1] < levels[-1], c
    c = (wide.numpy()[None] < levels[:, None]).mean(axis=1)
    _, upper = band(c)
    assert upper[1] < levels[1] and c[2] > levels[2], c


def test_tarp_coverage_shapes_and_default_references(tempered):
    t = tempered
    lo, hi = t["task"].lower, t["task"].upper
    curve = tarp_coverage(t["samples"], t["theta"], lo, hi, PAPER_LEVELS, generator=torch.Generator().manual_seed(5))
    assert curve.shape == (len(SCALES), len(PAPER_LEVELS))
    assert np.all(np.diff(curve, axis=-1) >= 0) and np.all((curve >= 0) & (curve <= 1))
    again = tarp_coverage(t["samples"], t["theta"], lo, hi, PAPER_LEVELS, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(curve, again)
    assert tarp_auc(t["credibility"]).shape == (len(SCALES),)


# --- divergences -----------------------------------------------------------------------


def test_kl_and_tv_by_hand():
    p = torch.log(torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)) + 3.0  # unnormalised
    q = torch.log(torch.tensor([[0.25, 0.25, 0.5]], dtype=torch.float64))
    assert kl_divergence(p, q).item() == pytest.approx(math.log(2))
    assert kl_divergence(q, p).item() == math.inf  # q puts mass where p has none
    both = torch.log(torch.tensor([[0.2, 0.8, 0.0]], dtype=torch.float64))
    assert kl_divergence(p, both).item() == pytest.approx(0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.8))
    assert total_variation(cell_mass(p), cell_mass(q)).item() == pytest.approx(0.5)
    disjoint = cell_mass(torch.log(torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)))
    assert total_variation(cell_mass(p), disjoint).item() == pytest.approx(1.0)


def test_kl_and_tv_of_tempered_posteriors(tempered):
    t = tempered
    task, cells, x = t["task"], t["cells"], t["x"][:200]
    query = cells[None].double()
    log_p = task.log_posterior(query, x[:, None])
    assert kl_divergence(log_p, log_p).abs().max().item() < 1e-12
    p = cell_mass(log_p)
    assert total_variation(p, p).abs().max().item() == 0.0
    for scales in [(1.2, 1.5, 2.0), (0.8, 0.6, 0.5)]:
        log_q = [task.log_posterior(query, x[:, None], scale=s) for s in scales]
        kl = torch.stack([kl_divergence(log_p, q) for q in log_q])
        tv = torch.stack([total_variation(p, cell_mass(q)) for q in log_q])
        assert torch.all(kl[0] > 0) and torch.all(kl.diff(dim=0) > 0)
        assert torch.all((tv > 0) & (tv <= 1)) and torch.all(tv.diff(dim=0) > 0)


@pytest.mark.parametrize("x_q, scale", [(-0.2, 1.5), (0.3, 0.6), (-0.7, 1.0)])
def test_kl_and_tv_match_closed_form_for_normals(x_q, scale):
    # a box of +-10 sigma: truncation is negligible; 1000 cells: h = sigma / 50
    task = Gaussian(dim=1, sigma=1.0, bound=10.0)
    cells, _ = grid(task.lower, task.upper, 1000)
    query = cells[None].double()
    x_p = 0.3
    log_p = task.log_posterior(query, torch.tensor([[x_p]], dtype=torch.float64))
    log_q = task.log_posterior(query, torch.tensor([[x_q]], dtype=torch.float64), scale=scale)
    kl = math.log(scale) + (1 + (x_p - x_q) ** 2) / (2 * scale**2) - 0.5
    assert kl_divergence(log_p, log_q).item() == pytest.approx(kl, abs=1e-6)
    if scale == 1.0:
        tv = 2 * norm.cdf(abs(x_p - x_q) / 2) - 1
    elif x_p == x_q:  # densities cross at x +- t
        t = math.sqrt(2 * scale**2 * math.log(scale) / (scale**2 - 1))
        tv = abs(norm.cdf(t) - norm.cdf(t / scale)) * 2
    else:  # the densities cross at the roots of a quadratic
        a = 1 / scale**2 - 1
        b = 2 * (x_p - x_q / scale**2)
        c = x_q**2 / scale**2 - x_p**2 + 2 * math.log(scale)
        roots = np.sort(np.roots([a, b, c]).real)
        # p - q on [r1, r2] has the sign of p - q at the midpoint; TV is that interval's |P - Q|
        inner = norm.cdf(roots[1], x_p) - norm.cdf(roots[0], x_p)
        inner -= norm.cdf(roots[1], x_q, scale) - norm.cdf(roots[0], x_q, scale)
        tv = abs(inner)
    assert total_variation(cell_mass(log_p), cell_mass(log_q)).item() == pytest.approx(tv, abs=1e-4)


# --- leading dimensions ----------------------------------------------------------------


def test_leading_estimator_dims():
    generator = torch.Generator().manual_seed(0)
    E, n, bins, dim = 2, 5, 4, 2
    lower, upper = np.array([-1.0, 0.0]), np.array([1.0, 3.0])
    cells, _ = grid(lower, upper, bins)
    log_density = torch.randn(E, n, bins**dim, generator=generator, dtype=torch.float64)
    mass = cell_mass(log_density)
    theta = torch.rand(n, dim, generator=generator, dtype=torch.float64) * torch.tensor([2.0, 3.0]) + torch.tensor(
        [-1.0, 0.0]
    )
    for m in marginal_masses(mass, bins, dim):
        assert m.shape == (E, n, bins)
    for fn in (sbc_ranks, marginal_hpd_ranks):
        out = fn(mass, theta, lower, upper, bins)
        assert out.shape == (E, n, dim)
        for e in range(E):
            torch.testing.assert_close(out[e], fn(mass[e], theta, lower, upper, bins))
        # a per-estimator truth broadcasts the same way
        torch.testing.assert_close(out, fn(mass, theta.expand(E, n, dim), lower, upper, bins))
    draws = sample_grid(mass, cells, lower, upper, bins, 7, generator)
    assert draws.shape == (E, n, 7, dim)
    assert tarp_credibility(draws, theta, lower, upper, generator=generator).shape == (E, n)
    assert tarp_coverage(draws, theta, lower, upper, PAPER_LEVELS, generator=generator).shape == (E, 19)
    assert kl_divergence(log_density, log_density.flip(0)).shape == (E, n)
    assert total_variation(mass, mass.flip(0)).shape == (E, n)
    r = sbc_ranks(mass, theta, lower, upper, bins)
    assert ecdf_difference(r[..., 0], PAPER_LEVELS).shape == (E, 19)
    with pytest.raises(ValueError):
        uniformity_pvalue(r[..., 0])
