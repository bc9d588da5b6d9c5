r"""A damped harmonic oscillator, the worked example of a user's own task (a plugin).

A unit mass released at rest from displacement 1 oscillates with natural frequency
:math:`\omega` and damping ratio :math:`\zeta < 1`:

.. math:: y(t) = e^{-\zeta \omega t} \left[\cos \omega_d t
    + \frac{\zeta}{\sqrt{1 - \zeta^2}} \sin \omega_d t\right],
    \qquad \omega_d = \omega \sqrt{1 - \zeta^2},

observed at :math:`t = 1, \dots, 10` with Gaussian noise of scale :math:`\sigma = 0.3`.
The prior is informative and not uniform: :math:`\log \omega \sim \mathcal{N}(0, 0.25^2)`
truncated to :math:`\omega \in [0.4, 2.5]`, and :math:`\zeta \sim \mathcal{N}(0.15, 0.1^2)`
truncated to :math:`[0, 0.5]`. The likelihood is Gaussian, so the workflow also
evaluates the exact posterior on the same grid.

Nothing here is specific to the example but the maths: a task subclasses
:class:`bnre.tasks.Task`, sets ``name``, ``prior`` (with a finite box), ``x_shape`` and
``labels``, and implements ``simulate``; ``embedding`` and ``log_likelihood`` are optional.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bnre.tasks import Independent, Task, TruncatedLogNormal, TruncatedNormal

TIMES = np.arange(1.0, 11.0)
NOISE = 0.3


def displacement(omega, zeta, t):
    """:math:`y(t)` for arrays (numpy or torch) that broadcast."""
    lib = torch if isinstance(omega, torch.Tensor) else np
    root = lib.sqrt(1 - zeta**2)
    phase = omega * root * t
    return lib.exp(-zeta * omega * t) * (lib.cos(phase) + zeta / root * lib.sin(phase))


class DampedOscillator(Task):
    """Natural frequency and damping ratio from ten noisy displacements."""

    name = "oscillator"
    labels = ("omega", "zeta")
    x_shape = (len(TIMES),)

    def __init__(self):
        self.prior = Independent(
            TruncatedLogNormal(loc=0.0, scale=0.25, lower=[0.4], upper=[2.5]),
            TruncatedNormal(loc=0.15, scale=0.1, lower=[0.0], upper=[0.5]),
        )

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        omega, zeta = theta[:, :1], theta[:, 1:]
        y = displacement(omega, zeta, TIMES)
        return y + NOISE * rng.standard_normal(y.shape)

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_j \log \mathcal{N}(x_j; y(t_j), \sigma^2)`."""
        t = torch.as_tensor(TIMES, dtype=x.dtype, device=x.device)
        omega, zeta = theta[..., :1].to(x.dtype), theta[..., 1:].to(x.dtype)
        z = (x - displacement(omega, zeta, t)) / NOISE
        return -0.5 * (z**2).sum(-1) - len(TIMES) * (math.log(NOISE) + 0.5 * math.log(2 * math.pi))

    def embedding(self) -> nn.Module:
        """A small MLP summary of the ten displacements (optional; default: flatten)."""
        return nn.Sequential(nn.Linear(len(TIMES), 64), nn.SELU(), nn.Linear(64, 16))

    def embedding_features(self) -> int:
        return 16
