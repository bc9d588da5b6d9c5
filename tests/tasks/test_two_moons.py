"""Two Moons: undoing the shift recovers the noisy half-circle of the definition."""

import math

import numpy as np

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
