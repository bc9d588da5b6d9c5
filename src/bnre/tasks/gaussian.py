r"""Gaussian task with an analytic posterior, the ground truth of the test suite.

:math:`\theta \sim \mathcal{U}([-1, 1]^D)`, :math:`x \sim \mathcal{N}(\theta, \sigma^2 I)`.
The posterior is the normal :math:`\mathcal{N}(x, \sigma^2 I)` truncated to the box:

.. math:: \log p(\theta \mid x) = \sum_i \log \mathcal{N}(\theta_i; x_i, \sigma^2)
    - \log\left[\Phi\left(\tfrac{u - x_i}{\sigma}\right)
    - \Phi\left(\tfrac{l - x_i}{\sigma}\right)\right]

for :math:`\theta` in the box, :math:`-\infty` outside; the likelihood is

.. math:: \log p(x \mid \theta) = -\frac{\lVert x - \theta \rVert^2}{2 \sigma^2}
    - D \log \sigma - \frac D2 \log 2\pi .
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import BoxUniform, Task, promote


class Gaussian(Task):
    """Box-uniform prior, isotropic Gaussian likelihood of scale ``sigma``."""

    name = "gaussian"

    def __init__(self, dim: int = 2, sigma: float = 0.2, bound: float = 1.0):
        self.sigma = float(sigma)
        self.prior = BoxUniform([-bound] * dim, [bound] * dim)
        self.x_shape = (dim,)
        self.labels = tuple(f"theta_{i + 1}" for i in range(dim))

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        return theta + self.sigma * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log \mathcal{N}(x; \theta, \sigma^2 I)`; ``theta`` (..., D) broadcasts with ``x``."""
        theta, x = promote(theta, x)
        z = (x - theta) / self.sigma
        dim = z.shape[-1]
        return -0.5 * (z**2).sum(dim=-1) - dim * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))

    def log_posterior(self, theta: torch.Tensor, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        r"""Exact :math:`\log p(\theta \mid x)`; ``theta`` (..., D) broadcasts with ``x``.

        ``scale`` multiplies :math:`\sigma`: ``scale < 1`` gives a too narrow
        (overconfident) posterior, ``scale > 1`` a too wide (conservative) one.
        """
        sigma = self.sigma * scale
        lower = torch.as_tensor(self.lower, dtype=theta.dtype, device=theta.device)
        upper = torch.as_tensor(self.upper, dtype=theta.dtype, device=theta.device)
        z = (theta - x) / sigma
        log_normal = -0.5 * z**2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
        mass = torch.special.ndtr((upper - x) / sigma) - torch.special.ndtr((lower - x) / sigma)
        log_p = (log_normal - torch.log(mass)).sum(dim=-1)
        inside = ((theta >= lower) & (theta <= upper)).all(dim=-1)
        return torch.where(inside, log_p, torch.full_like(log_p, -math.inf))
