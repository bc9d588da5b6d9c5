r"""Two Moons, the crescent-shaped bimodal posterior of sbibm.

Greenberg, Nonnenmacher and Macke, "Automatic Posterior Transformation for
Likelihood-Free Inference", ICML 2019; Lueckmann et al., "Benchmarking Simulation-Based
Inference", AISTATS 2021 (sbibm, whose definition this is).

:math:`\theta \sim \mathcal{U}([-1, 1]^2)`, :math:`a \sim \mathcal{U}(-\pi/2, \pi/2)`,
:math:`r \sim \mathcal{N}(0.1, 0.01^2)`, :math:`p = (r \cos a + 0.25,\ r \sin a)` and

.. math:: x = p + \left(-\frac{|\theta_1 + \theta_2|}{\sqrt 2},\
    \frac{\theta_2 - \theta_1}{\sqrt 2}\right) \in \mathbb{R}^2 .

The likelihood follows by the change of variables :math:`(a, r) \mapsto q = x -
\text{shift}(\theta) - (0.25, 0) = r (\cos a, \sin a)`, of Jacobian :math:`|r|`: a
point :math:`q` has the one preimage :math:`r = |q|` if :math:`q_1 > 0` and
:math:`r = -|q|` if :math:`q_1 < 0` (a negative radius, 10 standard deviations away), so

.. math:: p(x \mid \theta) = \frac{\mathcal{N}(|q|; 0.1, 0.01^2)\, \mathbb{1}[q_1 > 0]
    + \mathcal{N}(-|q|; 0.1, 0.01^2)\, \mathbb{1}[q_1 < 0]}{\pi |q|} .
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import BoxUniform, Task, promote


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
    def shift(theta: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        r"""The :math:`\theta`-dependent translation, (N, 2) -> (N, 2); torch: (..., 2) -> (..., 2)."""
        if isinstance(theta, torch.Tensor):
            t1, t2 = theta[..., 0], theta[..., 1]
            return torch.stack([-(t1 + t2).abs(), t2 - t1], dim=-1) / math.sqrt(2.0)
        t1, t2 = theta[:, 0], theta[:, 1]
        return np.stack([-np.abs(t1 + t2), t2 - t1], axis=-1) / math.sqrt(2.0)

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        n = theta.shape[0]
        a = rng.uniform(-math.pi / 2, math.pi / 2, n)
        r = self.radius_mean + self.radius_std * rng.standard_normal(n)
        p = np.stack([r * np.cos(a) + self.offset, r * np.sin(a)], axis=-1)
        return p + self.shift(theta)

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r"""Exact :math:`\log p(x \mid \theta)` of the module docstring; ``theta`` (..., 2)
        broadcasts with ``x`` (..., 2).

        At :math:`q = 0` (measure zero; the density diverges there) :math:`|q|` is floored
        at the dtype's smallest normal number, which keeps the value finite.
        """
        theta, x = promote(theta, x)
        q = x - self.shift(theta)
        q1, q2 = q[..., 0] - self.offset, q[..., 1]
        norm = torch.hypot(q1, q2).clamp_min(torch.finfo(q.dtype).tiny)
        radius = torch.where(q1 > 0, norm, -norm)  # the signed preimage r
        z = (radius - self.radius_mean) / self.radius_std
        log_normal = -0.5 * z**2 - math.log(self.radius_std) - 0.5 * math.log(2 * math.pi)
        return log_normal - torch.log(norm) - math.log(math.pi)
