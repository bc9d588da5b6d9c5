r"""One-sample-at-a-time Lotka–Volterra jump chain, written the plain way.

The model of :class:`bnre.tasks.LotkaVolterra` as a Python loop over the 1001 steps with
one uniform per step. It draws from ``rng`` in the same order as the batched simulator
does for a batch of one (the two prey log-rates, then the uniforms) and partitions the
total rate in the same order, so for one parameter both return the same series.
"""

from __future__ import annotations

import math

import numpy as np

STEPS = 1001
LOW, HIGH = -4.0, 1.0


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(X, Y) after each of 1001 reactions, for predator log-rates ``theta`` (2,)."""
    psi = rng.uniform(LOW, HIGH, size=2)
    k1, k2 = math.exp(theta[0]), math.exp(theta[1])
    k3, k4 = math.exp(psi[0]), math.exp(psi[1])
    x, y = 50.0, 100.0
    out = np.empty((STEPS, 2), dtype=np.float32)
    for step in range(STEPS):
        u = rng.random()
        # cumulative rates of X - 1, Y + 1, X + 1, Y - 1
        predator_death = k2 * x
        prey_birth = k3 * y + predator_death
        xy = x * y
        predator_birth = k1 * xy + prey_birth
        total = k4 * xy + predator_birth
        t = u * total
        if t < predator_death:
            x -= 1
        elif t < prey_birth:
            y += 1
        elif t < predator_birth:
            x += 1
        elif t < total:
            y -= 1
        # else: both species extinct, every rate is 0 and nothing happens
        out[step, 0] = x
        out[step, 1] = y
    return out
