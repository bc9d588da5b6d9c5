r"""Lotka–Volterra predator–prey Markov jump process, the "small" variant of the BNRE paper.

Delaunoy et al., "Towards Reliable Simulation-Based Inference with Balanced Neural Ratio
Estimation", NeurIPS 2022; Hermans et al., "A Trust Crisis in Simulation-Based
Inference? Your Posterior Approximations Can Be Unfaithful", TMLR 2022 (this variant).

The inferred parameters are the predator log-rates
:math:`\theta = (\theta_1, \theta_2) \sim \mathcal{U}([-4, 1]^2)`; the prey log-rates
:math:`\psi = (\psi_1, \psi_2)`, from the same prior, are nuisances drawn anew per
simulation. With :math:`k = \exp(\theta_1, \theta_2, \psi_1, \psi_2)`, :math:`X` predators
and :math:`Y` prey (initially 50 and 100), the reactions and their rates are

.. math:: X \to X + 1: k_1 X Y, \quad X \to X - 1: k_2 X, \quad
    Y \to Y + 1: k_3 Y, \quad Y \to Y - 1: k_4 X Y .

The observation is the embedded jump chain without its waiting times: each of 1001 steps
picks one reaction with probability proportional to its rate, and row :math:`s` of
:math:`x \in \mathbb{N}^{1001 \times 2}` is :math:`(X, Y)` *after* step :math:`s` (the
initial state is not recorded, as in the reference code). Once both species are extinct
every rate vanishes and the remaining rows stay at :math:`(0, 0)`.

Each step changes one count by one, so :math:`0 \le X \le 1051` and
:math:`0 \le Y \le 1101`: the counts cannot blow up, whatever the rates, and are exact
in ``float32``. (Populations do grow without bound in the continuous-time process, but
1001 reactions happen in ever shorter time.)
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..nets.embeddings import SeriesCNN
from .base import BoxUniform, Task
from .mg1 import Log1p

#: Steps per stored block of the chain (a working buffer small enough to stay in cache).
BLOCK = 32

# Reactions, in the order in which the uniform draw partitions the total rate:
# X - 1 (k2 X), Y + 1 (k3 Y), X + 1 (k1 X Y), Y - 1 (k4 X Y).
# With G the cumulative rates and t = u G_3, the flags l_r = [t < G_r] are monotone and a
# reaction's indicator is a difference of two flags, so (dX, dY) is linear in the flags and
# one matrix product updates the state. Extinct: G = 0 = t, no flag set, nothing changes.
_CUMULATIVE = np.tril(np.ones((4, 4)))
_UPDATE = np.array(
    [
        # l0    l1    l2    l3    X    Y
        [-1.0, -1.0, 1.0, 0.0, 1.0, 0.0],  # dX = -[t<G0] + ([t<G2] - [t<G1])
        [-1.0, 1.0, 1.0, -1.0, 0.0, 1.0],  # dY = ([t<G1] - [t<G0]) - ([t<G3] - [t<G2])
    ]
)


def jump_chain(
    k: np.ndarray, initial: tuple[float, float], steps: int, rng: np.random.Generator
) -> np.ndarray:
    r"""Embedded jump chain of the Lotka–Volterra process for rate constants ``k`` (N×4).

    Step :math:`s` draws :math:`u_s \sim \mathcal{U}(0, 1)` per sample (all samples of a
    step at once) and picks the reaction whose interval of the cumulative rates contains
    :math:`u_s \sum_r \text{rate}_r`: seven numpy calls per step on (·, N) arrays, the
    prefix sums and the state update as small matrix products. Returns (N, steps, 2)
    float32 counts after each step.
    """
    n = len(k)
    out = np.empty((n, steps, 2), np.float32)
    if n == 0:
        return out
    k1, k2, k3, k4 = np.ascontiguousarray(k.T, dtype=np.float64)
    k_linear = np.stack([k2, k3, k1])  # multiplies the features (X, Y, XY)
    # z[s] holds, for step s: the 4 flags, then X, Y, XY before the step.
    z = np.empty((BLOCK + 1, 7, n))
    z[0, 4], z[0, 5] = initial
    counts = np.empty((BLOCK, 2, n), np.float32)
    rates = np.empty((4, n))
    cumulative = np.empty((4, n))
    t = np.empty(n)
    first_rates, last_rate, total = rates[:3], rates[3], cumulative[3]
    flags, extended, features = list(z[:, :4]), list(z[:, :6]), list(z[:, 4:])
    xs, ys, xys, nexts = list(z[:, 4]), list(z[:, 5]), list(z[:, 6]), list(z[1:, 4:6])
    mul, less, dot = np.multiply, np.less, np.dot
    for start in range(0, steps, BLOCK):
        u = rng.random((min(BLOCK, steps - start), n))
        for us, f, e, feat, x, y, xy, new in zip(u, flags, extended, features, xs, ys, xys, nexts):
            mul(x, y, xy)
            mul(k_linear, feat, first_rates)
            mul(k4, xy, last_rate)
            dot(_CUMULATIVE, rates, cumulative)
            mul(us, total, t)
            less(t, cumulative, f)
            dot(_UPDATE, e, new)
        m = len(u)
        counts[:m] = z[1 : m + 1, 4:6]
        out[:, start : start + m] = counts[:m].transpose(2, 0, 1)
        z[0, 4:6] = z[m, 4:6]
    return out


class LotkaVolterra(Task):
    """Predator log-rates inferred, prey log-rates marginalised; (X, Y) after 1001 jumps."""

    name = "lotka_volterra"
    steps = 1001
    initial = (50.0, 100.0)

    def __init__(self) -> None:
        self.prior = BoxUniform([-4.0, -4.0], [1.0, 1.0])
        self.x_shape = (self.steps, 2)
        self.labels = ("theta_1", "theta_2")

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        psi = self.prior.sample(len(theta), rng)
        k = np.exp(np.concatenate([theta, psi], axis=1))
        return jump_chain(k, self.initial, self.steps, rng)

    def preprocess(self) -> nn.Module:
        r""":math:`\log(1 + x)`: the counts span three orders of magnitude (0 to about 1100)
        and the small ones (extinction) matter most. The reference network scaled by 1/100
        instead, which the per-element standardisation that follows would undo anyway."""
        return Log1p()

    def embedding(self) -> nn.Module:
        """1-D CNN over the standardised series; see :class:`bnre.nets.embeddings.SeriesCNN`."""
        return SeriesCNN(in_channels=2, length=self.steps, features=self.embedding_features())

    def embedding_features(self) -> int:
        return 64
