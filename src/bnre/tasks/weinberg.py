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

Likelihood: the events are iid with density :math:`f(c) = \max(0, 1 + c^2 + A c) / Z(A)`
on :math:`[-1, 1]`. :math:`Z` is symmetric in :math:`A` (:math:`c \to -c`); for
:math:`|A| \le 2` the quadratic is non-negative and :math:`Z = 8/3`; for :math:`|A| > 2`
its roots have product 1, the one in :math:`[-1, 1]` being
:math:`\pm r`, :math:`r = 2 / (|A| + \sqrt{A^2 - 4})`, and the density vanishes beyond
it (on :math:`(r, 1]` for :math:`A < -2`), so

.. math:: Z(A) = \int_{-1}^{r} (1 + c^2 - |A| c)\, dc
    = (1 + r) + \frac{1 + r^3}{3} - |A| \frac{r^2 - 1}{2} ,

which is :math:`8/3` at :math:`|A| = 2` (:math:`r = 1`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import BoxUniform, Task, promote


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

    def asymmetry(self, theta: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        r""":math:`A_{FB}` of ``theta`` (N, 1) -> (N,); torch: (..., 1) -> (...)."""
        sqrt_s = 2.0 * self.beam_energy
        if isinstance(theta, torch.Tensor):
            return 2.0 * math.tanh(10.0 * (sqrt_s - self.z_mass) / self.z_mass) * theta[..., 0]
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

    @staticmethod
    def log_normaliser(asymmetry: torch.Tensor) -> torch.Tensor:
        r""":math:`\log Z(A)` of the module docstring, exact for every :math:`A`."""
        a = asymmetry.abs().clamp_min(2.0)  # unclipped, Z(A) = Z(2) = 8/3, for |A| <= 2
        # the floor keeps the gradient finite at |A| <= 2, where Z does not depend on A
        r = 2.0 / (a + torch.sqrt(((a - 2.0) * (a + 2.0)).clamp_min(torch.finfo(a.dtype).tiny)))
        return torch.log((1.0 + r) + (1.0 + r**3) / 3.0 - a * (r**2 - 1.0) / 2.0)

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r"""Exact :math:`\log p(x \mid \theta) = \sum_{j=1}^{20} \log f(x_j)`; ``theta``
        (..., 1) broadcasts with ``x`` (..., 20). Events outside :math:`[-1, 1]` or where
        the clipped quadratic vanishes give :math:`-\infty`."""
        theta, x = promote(theta, x)
        a = self.asymmetry(theta)[..., None]
        quadratic = (1.0 + x**2 + a * x).clamp_min(0.0)
        inside = (x >= -1.0) & (x <= 1.0)
        log_f = torch.where(inside, torch.log(quadratic), torch.full_like(quadratic, -math.inf))
        return log_f.sum(dim=-1) - self.events * self.log_normaliser(a[..., 0])
