r"""Simple likelihood, complex posterior (SLCP), the 2-parameter variant of the BNRE paper.

Papamakarios et al., "Sequential Neural Likelihood", AISTATS 2019 (the original SLCP);
Delaunoy et al., "Towards Reliable Simulation-Based Inference with Balanced Neural Ratio
Estimation", NeurIPS 2022 (this variant).

:math:`\theta = (\theta_1, \theta_2) \sim \mathcal{U}([-3, 3]^2)` are the inferred scales;
the correlation :math:`\rho = \tanh(u)`, :math:`u \sim \mathcal{U}(-3, 3)`, is a nuisance
drawn anew per simulation. With :math:`\sigma_i = \theta_i^2` and
:math:`\mu = (0.7, -2.9)`,

.. math:: x_{1..4} \overset{iid}{\sim} \mathcal{N}\left(\mu,
    \begin{bmatrix}\sigma_1^2 & \rho\sigma_1\sigma_2\\ \rho\sigma_1\sigma_2 & \sigma_2^2
    \end{bmatrix}\right), \quad x \in \mathbb{R}^8 .
"""

from __future__ import annotations

import numpy as np

from .base import BoxUniform, Task


class SLCP(Task):
    """SLCP with fixed means (0.7, -2.9) and a nuisance correlation."""

    name = "slcp"
    mean = np.array([0.7, -2.9])
    draws = 4

    def __init__(self) -> None:
        self.prior = BoxUniform([-3.0, -3.0], [3.0, 3.0])
        self.x_shape = (2 * self.draws,)
        self.labels = ("theta_1", "theta_2")

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        n = theta.shape[0]
        rho = np.tanh(rng.uniform(-3.0, 3.0, size=(n, 1)))
        s1, s2 = theta[:, :1] ** 2, theta[:, 1:] ** 2
        # Cholesky factor of the covariance: L = [[s1, 0], [rho s2, sqrt(1 - rho^2) s2]]
        z = rng.standard_normal((n, self.draws, 2))
        x1 = s1 * z[..., 0]
        x2 = s2 * (rho * z[..., 0] + np.sqrt(1.0 - rho**2) * z[..., 1])
        x = np.stack([x1, x2], axis=-1) + self.mean
        return x.reshape(n, -1)
