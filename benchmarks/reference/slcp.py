r"""SLCP, one simulation at a time: 4 draws of :math:`\mathcal{N}(\mu, \Sigma(\theta, \rho))`."""

import math

import numpy as np


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s1, s2 = float(theta[0]) ** 2, float(theta[1]) ** 2
    rho = math.tanh(rng.uniform(-3.0, 3.0))
    cov = [[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]]
    return rng.multivariate_normal([0.7, -2.9], cov, size=4).ravel()
