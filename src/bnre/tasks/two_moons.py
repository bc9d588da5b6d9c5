r"""Two Moons, the crescent-shaped bimodal posterior of sbibm.

Greenberg, Nonnenmacher and Macke, "Automatic Posterior Transformation for
Likelihood-Free Inference", ICML 2019; Lueckmann et al., "Benchmarking Simulation-Based
Inference", AISTATS 2021 (sbibm, whose definition this is).

:math:`\theta \sim \mathcal{U}([-1, 1]^2)`, :math:`a \sim \mathcal{U}(-\pi/2, \pi/2)`,
:math:`r \sim \mathcal{N}(0.1, 0.01^2)`, :math:`p = (r \cos a + 0.25,\ r \sin a)` and

.. math:: x = p + \left(-\frac{|\theta_1 + \theta_2|}{\sqrt 2},\
    \frac{\theta_2 - \theta_1}{\sqrt 2}\right) \in \mathbb{R}^2 .
"""

from __future__ import annotations

import math

import numpy as np

from .base import BoxUniform, Task


class TwoMoons(Task):
    """A half-circle of radius ~0.1 shifted by a folded rotation of ``theta``."""

    name = "two_moons"
    radius_mean = 0.1
    radius_std = 0.01
    offset = 0.25

    def __init__(self) -> None:
        self.prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])
        self.x_shape = (2,)
        self.labels = ("theta_1", "theta_2")

    @staticmethod
    def shift(theta: np.ndarray) -> np.ndarray:
        r"""The :math:`\theta`-dependent translation, (N, 2) -> (N, 2)."""
        t1, t2 = theta[:, 0], theta[:, 1]
        return np.stack([-np.abs(t1 + t2), t2 - t1], axis=-1) / math.sqrt(2.0)

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        n = theta.shape[0]
        a = rng.uniform(-math.pi / 2, math.pi / 2, n)
        r = self.radius_mean + self.radius_std * rng.standard_normal(n)
        p = np.stack([r * np.cos(a) + self.offset, r * np.sin(a)], axis=-1)
        return p + self.shift(theta)
