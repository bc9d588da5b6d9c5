"""SLCP: the simulator against the moments of its definition."""

import numpy as np

from bnre.tasks import SLCP


def test_moments_match_definition():
    task = SLCP()
    theta = np.tile([[1.2, -0.8]], (200_000, 1))
    x = task.simulate(theta, np.random.default_rng(0)).reshape(-1, 4, 2)
    points = x.reshape(-1, 2)
    # mean (0.7, -2.9); standard deviations theta_i^2
    assert np.allclose(points.mean(axis=0), [0.7, -2.9], atol=0.01)
    assert np.allclose(points.std(axis=0), [1.2**2, 0.8**2], rtol=0.01)
    # the nuisance rho = tanh(u), u ~ U(-3, 3), is symmetric: marginal correlation 0
    assert abs(np.corrcoef(points.T)[0, 1]) < 0.01
    # but the 4 draws of one simulation share rho: |within-simulation correlation| > 0
    z = (x - x.mean(axis=1, keepdims=True))
    rho_hat = (z[..., 0] * z[..., 1]).sum(1) / np.sqrt((z[..., 0] ** 2).sum(1) * (z[..., 1] ** 2).sum(1))
    assert np.mean(np.abs(rho_hat)) > 0.5


def test_correlation_distribution():
    task = SLCP()
    theta = np.tile([[1.0, 1.0]], (100_000, 1))
    x = task.simulate(theta, np.random.default_rng(1)).reshape(-1, 4, 2)
    # E[x1 x2 | rho] = rho (unit scales, centred); E[rho^2] for rho = tanh(U(-3, 3))
    c = x - [0.7, -2.9]
    rho_sample = (c[..., 0] * c[..., 1]).mean(axis=1)
    u = np.random.default_rng(2).uniform(-3, 3, 1_000_000)
    assert np.mean(rho_sample**2) > np.mean(np.tanh(u) ** 2) * 0.95


def test_scales_are_squared_parameters():
    task = SLCP()
    theta = np.array([[-1.5, 0.5]] * 100_000)
    x = task.simulate(theta, np.random.default_rng(3)).reshape(-1, 2)
    assert np.allclose(x.std(axis=0), [2.25, 0.25], rtol=0.01)
