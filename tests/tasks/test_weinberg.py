"""Weinberg: the rejection sampler against the clipped angular density."""

import numpy as np
import pytest
from scipy import integrate

from bnre.tasks import Weinberg


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
