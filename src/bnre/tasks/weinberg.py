r"""Weinberg: forward-backward asymmetry of :math:`e^+e^- \to \mu^+\mu^-` collisions.

Louppe, Hermans and Cranmer, "Adversarial Variational Optimization of Non-Differentiable
Simulators", AISTATS 2019 (after Heinrich and Cranmer's ``active_sciencing`` demo);
Delaunoy et al., "Towards Reliable Simulation-Based Inference with Balanced Neural Ratio
Estimation", NeurIPS 2022 (this benchmark setting).

:math:`\theta = G_F / G_F^{\text{nominal}} \sim \mathcal{U}(0.25, 2)`. At beam energy
40 GeV (:math:`\sqrt{s} = 80`) and :math:`M_Z = 90`,

.. math:: A_{FB} = 2 \tanh\left(10 \frac{\sqrt{s} - M_Z}{M_Z}\right) \theta
    \approx -1.609\, \theta ,

and :math:`x_{1..20} \overset{iid}{\sim} f` with the angular density of
:math:`c = \cos \vartheta` on :math:`[-1, 1]`

.. math:: f(c) \propto \max(0,\ 1 + c^2 + A_{FB}\, c) .

For :math:`\theta > 2 / 1.609 \approx 1.243`, :math:`1 + c^2 + A_{FB} c` is negative near
:math:`c = 1`; that region has zero density (the clipping above). Draws are made by
rejection from the uniform envelope :math:`M = 2 + |A_{FB}| = \max_c f(c)`, accepting
:math:`c \sim \mathcal{U}(-1, 1)` when :math:`u M < f(c)`, :math:`u \sim \mathcal{U}(0, 1)`.

Deliberate difference: the authors' ``hypothesis`` code normalises :math:`f` by
:math:`8/3` and divides it by its maximum :math:`m = 3 (2 + |A_{FB}|) / 8` twice in the
acceptance test, i.e. accepts with probability :math:`\min(1, f / m^2)`. For
:math:`m \ge 1` that only lowers the acceptance rate, but for :math:`m < 1`
(:math:`\theta < 0.414`) it caps the top of :math:`f` near :math:`c = -1`, flattening the
density. We sample the density as defined above.
"""

from __future__ import annotations

import math

import numpy as np

from .base import BoxUniform, Task


class Weinberg(Task):
    """20 cos-angle events by rejection sampling; one parameter, the Fermi constant."""

    name = "weinberg"
    beam_energy = 40.0
    z_mass = 90.0
    events = 20
    max_rounds = 1000

    def __init__(self) -> None:
        self.prior = BoxUniform([0.25], [2.0])
        self.x_shape = (self.events,)
        self.labels = ("theta",)

    def asymmetry(self, theta: np.ndarray) -> np.ndarray:
        r""":math:`A_{FB}` of ``theta`` (N, 1) -> (N,)."""
        sqrt_s = 2.0 * self.beam_energy
        return 2.0 * math.tanh(10.0 * (sqrt_s - self.z_mass) / self.z_mass) * theta[:, 0]

    @staticmethod
    def density(c: np.ndarray, asymmetry: np.ndarray) -> np.ndarray:
        r"""Unnormalised clipped density :math:`\max(0, 1 + c^2 + A_{FB} c)`."""
        return np.maximum(1.0 + c**2 + asymmetry * c, 0.0)

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        n = theta.shape[0]
        a = np.repeat(self.asymmetry(theta), self.events)  # one entry per draw
        bound = 2.0 + np.abs(a)
        x = np.empty(n * self.events)
        pending = np.arange(n * self.events)
        for _ in range(self.max_rounds):
            if pending.size == 0:
                return x.reshape(n, self.events)
            c = rng.uniform(-1.0, 1.0, pending.size)
            u = rng.uniform(0.0, 1.0, pending.size)
            accept = u * bound[pending] < self.density(c, a[pending])
            x[pending[accept]] = c[accept]
            pending = pending[~accept]
        if pending.size == 0:
            return x.reshape(n, self.events)
        stuck = np.unique(pending // self.events)
        raise RuntimeError(
            f"weinberg: rejection sampling did not finish in {self.max_rounds} rounds for "
            f"{stuck.size} simulation(s), e.g. theta={theta[stuck[0]].tolist()}"
        )
