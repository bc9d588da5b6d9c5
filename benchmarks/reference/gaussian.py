r"""Gaussian task, one simulation at a time: :math:`x_i = \theta_i + 0.2\, \epsilon_i`."""

import numpy as np


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.array([t + 0.2 * rng.standard_normal() for t in theta])
