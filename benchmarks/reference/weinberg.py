r"""Weinberg, one simulation at a time: 20 cos-angles by scalar rejection sampling.

:math:`f(c) \propto \max(0, 1 + c^2 + A_{FB} c)`,
:math:`A_{FB} = 2 \tanh(10 (80 - 90) / 90)\, \theta`.
"""

import math

import numpy as np


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a_fb = 2.0 * math.tanh(10.0 * (80.0 - 90.0) / 90.0) * float(theta[0])
    bound = 2.0 + abs(a_fb)
    x = []
    while len(x) < 20:
        c = rng.uniform(-1.0, 1.0)
        if rng.uniform() * bound < max(0.0, 1.0 + c * c + a_fb * c):
            x.append(c)
    return np.array(x)
