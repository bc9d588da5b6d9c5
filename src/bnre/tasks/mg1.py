r"""M/G/1 queue: one server, uniform service times, Poisson arrivals.

Shestopaloff and Neal, "On Bayesian inference for the M/G/1 queue with efficient MCMC
sampling", arXiv:1401.5548, 2014; Papamakarios, Sterratt and Murray, "Sequential Neural
Likelihood", AISTATS 2019; Delaunoy et al., "Towards Reliable Simulation-Based Inference
with Balanced Neural Ratio Estimation", NeurIPS 2022 (this setting).

:math:`\theta \sim \mathcal{U}([0, 0, 0], [10, 10, 1/3])` (:math:`\theta_2 < \theta_1` is
allowed). For :math:`N = 50` customers, service times
:math:`s_i = \theta_1 + (\theta_2 - \theta_1) U_i`, :math:`U_i \sim \mathcal{U}(0, 1)`;
inter-arrival times :math:`v_i \sim \text{Exp}(\theta_3)` (rate), arrivals
:math:`a_i = \sum_{j \le i} v_j`; inter-departure times

.. math:: d_i = s_i + \max(0,\ a_i - D_{i-1}), \quad D_i = D_{i-1} + d_i, \quad D_0 = 0,

and :math:`x` are the 0, 25, 50, 75 and 100 % percentiles of :math:`\{d_i\}` (linear
interpolation), so :math:`x \ge 0` and non-decreasing.

Small rates: :math:`v_i` is drawn as :math:`E_i / \theta_3`, :math:`E_i \sim \text{Exp}(1)`,
with :math:`\theta_3` raised to at least :data:`MG1.min_rate` (``1e-20``, prior probability
``3e-20``): :math:`\theta_3 = 0` is in the closed prior box but makes the queue never
receive a second customer. Every :math:`x` is then finite, also in float32.

Heavy tails: :math:`x` spans many orders of magnitude (the authors standardised it with
fixed means and standard deviations). Here :meth:`MG1.preprocess` applies
:math:`\log(1 + x)` before the ratio estimator's train-set standardisation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import BoxUniform, Task


class Log1p(nn.Module):
    r""":math:`x \mapsto \log(1 + x)`, for non-negative observations."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x)


class MG1(Task):
    """Percentiles of 50 inter-departure times of an M/G/1 queue."""

    name = "mg1"
    customers = 50
    percentiles = (0.0, 25.0, 50.0, 75.0, 100.0)
    min_rate = 1e-20

    def fixed_x_statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The means and standard deviations of raw x with which the authors' pipeline
        standardised it (``train.normalise: fixed``)."""
        return (4.449, 17.55, 37.19, 75.89, 249.5), (130.5, 1331.0, 3428.0, 8741.0, 31141.0)

    def __init__(self) -> None:
        self.prior = BoxUniform([0.0, 0.0, 0.0], [10.0, 10.0, 1.0 / 3.0])
        self.x_shape = (len(self.percentiles),)
        self.labels = ("theta_1", "theta_2", "theta_3")

    def inter_departures(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r"""The :math:`d_i`, shape (N, 50)."""
        theta = np.asarray(theta, dtype=np.float64)
        n, k = theta.shape[0], self.customers
        t1, t2 = theta[:, :1], theta[:, 1:2]
        service = t1 + (t2 - t1) * rng.uniform(0.0, 1.0, (n, k))
        rate = np.maximum(theta[:, 2:3], self.min_rate)
        arrivals = np.cumsum(rng.standard_exponential((n, k)) / rate, axis=1)
        d = np.empty((n, k))
        departure = np.zeros(n)
        for i in range(k):
            d[:, i] = service[:, i] + np.maximum(0.0, arrivals[:, i] - departure)
            departure = departure + d[:, i]
        bad = ~np.isfinite(d).all(axis=1)
        if bad.any():
            raise FloatingPointError(
                f"mg1: non-finite inter-departure times, e.g. at theta={theta[bad][0].tolist()}"
            )
        return d

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d = self.inter_departures(theta, rng)
        return np.percentile(d, self.percentiles, axis=1).T

    def preprocess(self) -> nn.Module:
        r""":math:`\log(1 + x)` against the heavy tails of :math:`x \ge 0`."""
        return Log1p()
