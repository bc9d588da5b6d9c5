r"""Spatial SIR epidemic on a lattice, as in the BNRE paper.

Delaunoy et al., "Towards Reliable Simulation-Based Inference with Balanced Neural Ratio
Estimation", NeurIPS 2022; Hermans et al., "A Trust Crisis in Simulation-Based
Inference? Your Posterior Approximations Can Be Unfaithful", TMLR 2022.

:math:`\theta = (\beta, \gamma) \sim \mathcal{U}([0, 1]^2)`. On a 50×50 lattice of
susceptible cells, :math:`N_0 = 1 + \mathrm{Poisson}(3)` cells, drawn uniformly with
replacement (a repeat hits an already infected cell), are infected. Then 100 synchronous
steps (none once nobody is infected): with :math:`n` the number of infected cells among the
8 neighbours of a cell (cells outside the lattice count as not infected),

.. math:: P(S \to I) = \beta n / 8, \qquad P(I \to R) = \gamma,

all cells independently given the state. The observation is the final state as three
indicator channels :math:`x \in \{0, 1\}^{3 \times 50 \times 50}` (S, I, R), exactly one
of which is 1 per cell.

Implementation: a cell infected at step :math:`s` (infected from state :math:`s + 1` on)
is recovered from state :math:`s + 1 + G` on, :math:`G \sim \mathrm{Geometric}(\gamma)` on
:math:`\{1, 2, \dots\}`: that is the law of the first success of the per-step
:math:`\gamma`-coins, so one draw at infection replaces them. The lattice then is a single
``int8`` array of recovery states (:math:`-1` susceptible), only susceptible cells next to
an infection draw a uniform, and samples whose epidemic is over leave the batch.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..nets.embeddings import LatticeResNet
from .base import BoxUniform, Task

SIZE = 50
WIDTH = SIZE + 2  # with a border of never-infected cells
CELLS = WIDTH * WIDTH
SUSCEPTIBLE, BORDER = -1, -2
#: Recovery states beyond the horizon are stored as this (any value > steps means infected).
LATE = 127


def geometric_steps(exponential: np.ndarray, log_survival: np.ndarray) -> np.ndarray:
    r""":math:`G = \lfloor E / -\log(1 - \gamma) \rfloor + 1 \sim \mathrm{Geometric}(\gamma)`
    from :math:`E \sim \mathrm{Exp}(1)`; ``log_survival`` is :math:`\log(1 - \gamma)`
    (:math:`-\infty` for :math:`\gamma = 1`: :math:`G = 1`; 0 for :math:`\gamma = 0`: never)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor(exponential / -log_survival) + 1.0


def epidemic(
    beta: np.ndarray, gamma: np.ndarray, initial: np.ndarray, steps: int, rng: np.random.Generator
) -> np.ndarray:
    r"""Recovery states (N, 52·52) int8 after ``steps`` steps of the spatial SIR model.

    ``initial`` (N, K) holds the initially infected cells as flat indices of the bordered
    lattice, :math:`-1` for none. A cell is susceptible at the end if its value is
    :math:`-1`, infected if it is ``> steps``, recovered otherwise (border cells: :math:`-2`).
    """
    if steps >= LATE:
        raise ValueError(f"at most {LATE - 1} steps, got {steps}")
    n = len(beta)
    with np.errstate(divide="ignore"):
        log_survival = np.log1p(-gamma)
    state = np.full((n, WIDTH, WIDTH), BORDER, np.int8)
    state[:, 1:-1, 1:-1] = SUSCEPTIBLE
    state = state.reshape(n, CELLS)
    rows, cols = np.nonzero(initial >= 0)
    cells = rows * CELLS + initial[rows, cols]
    delay = geometric_steps(rng.standard_exponential(len(cells)), log_survival[rows])
    state.reshape(-1)[cells] = np.fmin(delay, LATE)

    final = state.copy()
    alive = np.arange(n)  # samples still in the batch
    size = n * CELLS
    infected_buffer = np.empty(size, np.bool_)
    horizontal_buffer = np.empty(size, np.uint8)
    counts_buffer = np.empty(size, np.uint8)
    susceptible_buffer = np.empty(size, np.bool_)
    exposed_buffer = np.empty(size, np.bool_)
    for step in range(steps):
        infected = np.greater(state.reshape(-1), step, out=infected_buffer[: len(alive) * CELLS])
        ongoing = infected.reshape(len(alive), CELLS).any(axis=1)
        if not ongoing.all():
            final[alive[~ongoing]] = state[~ongoing]
            state, alive = state[ongoing], alive[ongoing]
            if len(alive) == 0:
                return final
            infected = np.greater(state.reshape(-1), step, out=infected_buffer[: len(alive) * CELLS])
        m = len(alive) * CELLS
        # Moore counts, including the cell itself (0 for susceptible cells), as sums of
        # shifted copies of the flat bordered lattice: count[j] belongs to cell j + WIDTH + 1.
        i = infected.view(np.uint8)
        horizontal = np.add(i[:-2], i[1:-1], out=horizontal_buffer[: m - 2])
        horizontal += i[2:]
        count = np.add(horizontal[: -2 * WIDTH], horizontal[WIDTH:-WIDTH], out=counts_buffer[: m - 2 - 2 * WIDTH])
        count += horizontal[2 * WIDTH :]
        inner = state.reshape(-1)[WIDTH + 1 : m - WIDTH - 1]
        susceptible = np.equal(inner, SUSCEPTIBLE, out=susceptible_buffer[: len(inner)])
        exposed = np.not_equal(count, 0, out=exposed_buffer[: len(inner)])
        exposed &= susceptible
        candidates = np.flatnonzero(exposed)
        if len(candidates) == 0:
            continue
        sample = alive[candidates // CELLS]
        hit = rng.random(len(candidates)) * 8.0 < beta[sample] * count[candidates]
        new = candidates[hit]
        delay = geometric_steps(rng.standard_exponential(len(new)), log_survival[sample[hit]])
        state.reshape(-1)[new + WIDTH + 1] = np.fmin(step + 1 + delay, LATE)
    final[alive] = state
    return final


class SpatialSIR(Task):
    """Infection and recovery probabilities of a lattice epidemic, from its final state."""

    name = "spatial_sir"
    steps = 100
    mean_initial = 3.0

    def __init__(self) -> None:
        self.prior = BoxUniform([0.0, 0.0], [1.0, 1.0])
        self.x_shape = (3, SIZE, SIZE)
        self.labels = ("beta", "gamma")

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        n = len(theta)
        x = np.zeros((n, *self.x_shape), np.float32)
        if n == 0:
            return x
        number = 1 + rng.poisson(self.mean_initial, n)
        where = rng.integers(0, SIZE, size=(n, number.max(), 2))
        initial = (where[..., 0] + 1) * WIDTH + where[..., 1] + 1
        initial[np.arange(number.max()) >= number[:, None]] = -1
        state = epidemic(theta[:, 0], theta[:, 1], initial, self.steps, rng)
        state = state.reshape(n, WIDTH, WIDTH)[:, 1:-1, 1:-1]
        np.equal(state, SUSCEPTIBLE, out=x[:, 0])
        np.greater(state, self.steps, out=x[:, 1])
        np.subtract(1.0, x[:, 0], out=x[:, 2])
        x[:, 2] -= x[:, 1]
        return x

    def embedding(self) -> nn.Module:
        """Small ResNet over the 3 channels; see :class:`bnre.nets.embeddings.LatticeResNet`."""
        return LatticeResNet(in_channels=3, channels=(32, 64, self.embedding_features()))

    def embedding_features(self) -> int:
        return 64
