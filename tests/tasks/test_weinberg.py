"""Weinberg: the rejection sampler against the clipped angular density."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from bnre.tasks import Weinberg
from likelihood_checks import grid_rank_pvalue


def normalised_density(task: Weinberg, theta: float):
    a = task.asymmetry(np.array([[theta]]))[0]
    mass, _ = integrate.quad(lambda c: task.density(c, a), -1, 1, limit=200)
    return lambda c: task.density(c, a) / mass


@pytest.mark.parametrize("theta", [0.25, 1.0, 1.8])
def test_histogram_matches_clipped_density(theta):
    # at theta = 0.25 the reference code's double division (acceptance min(1, f / m^2))
    # would be ~10 sigma off in the first bins
    task = Weinberg()
    x = task.simulate(np.full((20_000, 1), theta), np.random.default_rng(0)).ravel()
    assert np.all(np.abs(x) <= 1)
    f = normalised_density(task, theta)
    edges = np.linspace(-1, 1, 21)
    counts, _ = np.histogram(x, edges)
    p = np.array([integrate.quad(f, lo, hi)[0] for lo, hi in zip(edges[:-1], edges[1:])])
    expected = p * x.size
    # binomial 5-sigma band per bin (the bins with zero mass must be empty)
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected * (1 - p)) + 1e-9)
    mean, _ = integrate.quad(lambda c: c * f(c), -1, 1, limit=200)
    assert x.mean() == pytest.approx(mean, abs=5 * x.std() / np.sqrt(x.size))


def test_negative_region_has_no_draws():
    task = Weinberg()
    theta = 1.8
    a = task.asymmetry(np.array([[theta]]))[0]
    # 1 + c^2 + a c < 0 between its roots; the larger root is > 1
    root = (-a - np.sqrt(a**2 - 4)) / 2
    assert -1 < root < 1
    x = task.simulate(np.full((5_000, 1), theta), np.random.default_rng(1))
    assert x.max() <= root
    assert x.max() > root - 0.01


def test_asymmetry_is_negative_and_linear_in_theta():
    task = Weinberg()
    a = task.asymmetry(np.array([[0.25], [1.0], [2.0]]))
    assert a[1] == pytest.approx(2 * np.tanh(10 * (80 - 90) / 90))
    assert np.allclose(a, a[1] * np.array([0.25, 1.0, 2.0]))


def test_failed_acceptance_names_theta(monkeypatch):
    task = Weinberg()
    monkeypatch.setattr(task, "max_rounds", 1)
    with pytest.raises(RuntimeError, match=r"weinberg: .*theta=\[1\.5\]"):
        task.simulate(np.full((100, 1), 1.5), np.random.default_rng(0))


def event_log_density(task: Weinberg, theta: float, c: np.ndarray) -> np.ndarray:
    """log f(c) of one event from the 20-event likelihood: all 20 events at c give f(c)^20."""
    x = torch.as_tensor(np.asarray(c, dtype=np.float64))[..., None].expand(*np.shape(c), task.events)
    return task.log_likelihood(torch.tensor([theta], dtype=torch.float64), x).numpy() / task.events


def zero_of_density(task: Weinberg, theta: float) -> list[float]:
    """The root of 1 + c^2 + A c in (-1, 1), if any (a kink of the clipped density)."""
    a = task.asymmetry(np.array([[theta]]))[0]
    return [(-a - math.sqrt(a**2 - 4)) / 2] if abs(a) > 2 else []


# 2 / 1.609 = 1.243 is where the clipping starts
THETAS = [0.25, 0.8, 1.2, 2 / 1.6094, 1.3, 1.8, 2.0]


@pytest.mark.parametrize("theta", THETAS)
def test_event_density_integrates_to_one(theta):
    task = Weinberg()
    f = lambda c: math.exp(event_log_density(task, theta, np.array(c)))  # noqa: E731
    mass, _ = integrate.quad(f, -1, 1, points=zero_of_density(task, theta), epsabs=1e-13, limit=200)
    assert mass == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("theta", THETAS)
def test_likelihood_is_the_product_of_the_normalised_clipped_densities(theta):
    # against the simulator's own density max(0, 1 + c^2 + A c), normalised by quadrature
    task = Weinberg()
    a = task.asymmetry(np.array([[theta]]))[0]
    mass, _ = integrate.quad(lambda c: task.density(c, a), -1, 1, points=zero_of_density(task, theta), limit=200)
    x = task.simulate(np.full((50, 1), theta), np.random.default_rng(0))
    expected = np.log(task.density(x, a) / mass).sum(-1)
    value = task.log_likelihood(torch.tensor([theta], dtype=torch.float64), torch.as_tensor(x)).numpy()
    assert np.allclose(value, expected, rtol=1e-12, atol=1e-10)
    # an event outside [-1, 1], or where the clipped density vanishes, has probability 0
    for c in [-1.0001, 1.0001] + [0.5 * (root + 1) for root in zero_of_density(task, theta)]:
        bad = torch.as_tensor(x[:1].copy())
        bad[0, 7] = c
        assert task.log_likelihood(torch.tensor([theta], dtype=torch.float64), bad).item() == -math.inf


@pytest.mark.parametrize("theta", [0.25, 1.0, 1.8])
def test_event_density_fits_the_histogram_of_simulated_events(theta):
    task = Weinberg()
    x = task.simulate(np.full((2000, 1), theta), np.random.default_rng(3)).ravel()  # 40,000 events
    edges = np.linspace(-1, 1, 41)
    counts, _ = np.histogram(x, edges)
    f = lambda c: math.exp(event_log_density(task, theta, np.array(c)))  # noqa: E731
    kinks = zero_of_density(task, theta)
    p = np.array(
        [
            integrate.quad(f, lo, hi, points=[r for r in kinks if lo < r < hi] or None)[0]
            for lo, hi in zip(edges[:-1], edges[1:])
        ]
    )
    empty = p < 1e-12  # beyond the zero of the density
    assert np.all(counts[empty] == 0)
    # pool neighbouring bins until each expects at least 20 events
    observed, expected = [], []
    for k, e in zip(counts[~empty], p[~empty] * x.size):
        if not expected or expected[-1] >= 20:
            observed.append(0)
            expected.append(0.0)
        observed[-1] += k
        expected[-1] += e
    if expected[-1] < 20:  # the remainder joins the previous group
        observed[-2:] = [sum(observed[-2:])]
        expected[-2:] = [sum(expected[-2:])]
    observed, expected = np.array(observed), np.array(expected)
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=len(expected) - 1) > 1e-3


def test_grid_posterior_of_the_likelihood_is_calibrated():
    # ranks of theta* under prior x likelihood on a fine grid, over (theta*, x*) from
    # prior x simulator, are uniform
    task = Weinberg()
    ks_pvalue = grid_rank_pvalue(task, task.prior, bins=1000)
    assert ks_pvalue(task.log_likelihood) > 1e-3
    # the same test sees a wrong likelihood: theta off by 20 %, or the asymmetry's sign
    # flipped (x mirrored)
    assert ks_pvalue(lambda t, x: task.log_likelihood(1.2 * t, x)) < 1e-3
    assert ks_pvalue(lambda t, x: task.log_likelihood(t, -x)) < 1e-3
