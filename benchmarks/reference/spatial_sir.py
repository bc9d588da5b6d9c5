r"""One-sample-at-a-time spatial SIR, written the plain way.

:func:`simulate_one` follows the definition literally, with Python loops over the steps and
the cells and one uniform per susceptible cell with an infected neighbour and per infected
cell, as the authors' original simulator did. :func:`simulate_one_numpy` is the per-sample
vectorised version (whole-lattice numpy operations per step), a stronger baseline.
Both draw the initial infections like :class:`bnre.tasks.SpatialSIR` (uniform cells, with
replacement) but use the random stream differently, so they agree in law, not draw by draw.
"""

from __future__ import annotations

import numpy as np

SIZE = 50
STEPS = 100
S, I, R = 0, 1, 2


def _initial(rng: np.random.Generator) -> list[tuple[int, int]]:
    number = 1 + rng.poisson(3.0)
    return [tuple(cell) for cell in rng.integers(0, SIZE, size=(number, 2))]


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Final S, I, R indicator channels (3, 50, 50) for ``theta = (beta, gamma)``."""
    beta, gamma = float(theta[0]), float(theta[1])
    grid = [[S] * SIZE for _ in range(SIZE)]
    for i, j in _initial(rng):
        grid[i][j] = I
    for _ in range(STEPS):
        if not any(I in row for row in grid):
            break
        new = [row[:] for row in grid]
        for i in range(SIZE):
            for j in range(SIZE):
                if grid[i][j] == S:
                    n = 0
                    for a in (i - 1, i, i + 1):
                        for b in (j - 1, j, j + 1):
                            if 0 <= a < SIZE and 0 <= b < SIZE and grid[a][b] == I:
                                n += 1
                    if n and rng.random() < beta * n / 8:
                        new[i][j] = I
                elif grid[i][j] == I and rng.random() < gamma:
                    new[i][j] = R
        grid = new
    state = np.array(grid)
    return np.stack([state == S, state == I, state == R]).astype(np.float32)


def simulate_one_numpy(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same model with whole-lattice numpy operations per step."""
    beta, gamma = float(theta[0]), float(theta[1])
    susceptible = np.ones((SIZE, SIZE), bool)
    infected = np.zeros((SIZE, SIZE), bool)
    recovered = np.zeros((SIZE, SIZE), bool)
    for i, j in _initial(rng):
        infected[i, j] = True
    susceptible &= ~infected
    for _ in range(STEPS):
        if not infected.any():
            break
        p = np.pad(infected, 1).astype(np.uint8)
        n = (
            p[:-2, :-2] + p[:-2, 1:-1] + p[:-2, 2:]
            + p[1:-1, :-2] + p[1:-1, 2:]
            + p[2:, :-2] + p[2:, 1:-1] + p[2:, 2:]
        )
        infection = susceptible & (rng.random((SIZE, SIZE)) < beta * n / 8)
        recovery = infected & (rng.random((SIZE, SIZE)) < gamma)
        susceptible &= ~infection
        infected = (infected & ~recovery) | infection
        recovered |= recovery
    return np.stack([susceptible, infected, recovered]).astype(np.float32)
