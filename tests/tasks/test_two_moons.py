"""Two Moons: undoing the shift recovers the noisy half-circle of the definition."""

import math

import numpy as np
import pytest
import torch

from bnre.evaluation.coverage import grid
from bnre.tasks import TwoMoons


def test_unshifted_points_lie_on_a_noisy_half_circle():
    task = TwoMoons()
    rng = np.random.default_rng(0)
    theta = task.prior.sample(200_000, rng)
    p = task.simulate(theta, rng) - task.shift(theta)
    dx, dy = p[:, 0] - 0.25, p[:, 1]
    radius, angle = np.hypot(dx, dy), np.arctan2(dy, dx)
    assert abs(radius.mean() - 0.1) < 1e-4
    assert abs(radius.std() / 0.01 - 1) < 0.01
    assert np.all(np.abs(angle) < math.pi / 2)
    # the angle is uniform on (-pi/2, pi/2): each of 10 bins holds 10 % (5 sigma)
    counts, _ = np.histogram(angle, np.linspace(-math.pi / 2, math.pi / 2, 11))
    assert np.all(np.abs(counts / angle.size - 0.1) < 5 * math.sqrt(0.09 / angle.size))


def test_shift_is_the_folded_rotation():
    theta = np.array([[0.3, -0.7], [-0.2, 0.5], [1.0, 1.0]])
    expected = np.array(
        [[-abs(t1 + t2), t2 - t1] for t1, t2 in theta]
    ) / math.sqrt(2)
    assert np.allclose(TwoMoons.shift(theta), expected)


def test_theta_and_its_mirror_give_the_same_observations():
    # (theta_1, theta_2) and (-theta_2, -theta_1) have the same shift: bimodal posterior
    task = TwoMoons()
    theta = task.prior.sample(1000, np.random.default_rng(0))
    x = task.simulate(theta, np.random.default_rng(1))
    x_mirror = task.simulate(-theta[:, ::-1], np.random.default_rng(1))
    assert np.allclose(x, x_mirror)


@pytest.mark.parametrize("theta", [[0.0, 0.0], [0.6, -0.3], [-0.9, -0.8]])
def test_likelihood_is_the_normalised_crescent(theta):
    # Midpoint rule over x on a square of side 0.4 around the half-circle's centre,
    # spacing 0.0005 (radial sd / 20), with a cell edge on the cut q_1 = 0 (the density
    # jumps there, at the tips of the crescent). Also the moments of its definition:
    # E[q] = (E r E cos a, 0) = (0.2 / pi, 0), E|q|^2 = E r^2 = 0.1^2 + 0.01^2.
    task = TwoMoons()
    theta = torch.tensor(theta, dtype=torch.float64)
    centre = task.shift(theta) + torch.tensor([task.offset, 0.0], dtype=torch.float64)
    q, log_volume = grid(np.array([-0.2, -0.2]), np.array([0.2, 0.2]), 800)
    q = q.double()
    log_p = task.log_likelihood(theta, centre + q)
    assert torch.logsumexp(log_p, 0).item() + log_volume == pytest.approx(0.0, abs=1e-6)
    mass = torch.softmax(log_p, 0)
    assert torch.allclose(mass @ q, torch.tensor([0.2 / math.pi, 0.0], dtype=torch.float64), atol=1e-7)
    assert (mass @ (q**2).sum(-1)).item() == pytest.approx(0.1**2 + 0.01**2, rel=1e-5)


def test_grid_posterior_matches_rejection_abc():
    # Rejection ABC keeps the prior draws whose x lies within eps of x_obs: its posterior
    # is p(theta) P(|x - x_obs| < eps | theta). The shift is an isometry on each side of
    # theta_1 + theta_2 = 0 and, for this x_obs, the posterior lies far from that line and
    # from the box edges, so in phi = shift(theta) the ABC posterior is the exact one
    # convolved with the uniform disk of radius eps: same mean, covariance + eps^2 / 4 I.
    task = TwoMoons()
    x_obs, eps = np.array([0.1, -0.2]), 0.02
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(16):  # 2^23 simulations, about 5000 kept
        theta = task.prior.sample(2**19, rng)
        x = task.simulate(theta, rng)
        kept.append(theta[np.hypot(*(x - x_obs).T) < eps])
    abc = np.concatenate(kept)
    assert len(abc) > 4000

    def features(theta):
        phi = task.shift(theta)
        return np.stack([theta[:, 0], theta[:, 1], phi[:, 0], phi[:, 1], phi[:, 0] ** 2, phi[:, 1] ** 2], axis=1)

    # the exact posterior on a grid of spacing 0.001 over a box holding all its mass
    # (|theta_i| < 0.56 here); the midpoint rule's error, O(h) at the jump of the
    # density across q_1 = 0, is below 0.2 standard errors of the ABC means
    cells, _ = grid(np.array([-0.6, -0.6]), np.array([0.6, 0.6]), 1200)
    cells = cells.double()
    log_p = task.log_likelihood(cells, torch.as_tensor(x_obs))
    edge = (cells.abs() > 0.59).any(-1)
    assert log_p[edge].max() < log_p.max() - 100
    exact = torch.softmax(log_p, 0).numpy() @ features(cells.numpy())
    expected = exact + np.array([0, 0, 0, 0, eps**2 / 4, eps**2 / 4])
    f = features(abc)
    z = (f.mean(0) - expected) / (f.std(0, ddof=1) / math.sqrt(len(f)))
    assert np.all(np.abs(z) < 5), z
