r"""Two Moons, one simulation at a time.

:math:`x = (r \cos a + 0.25, r \sin a) + (-|\theta_1 + \theta_2|, \theta_2 - \theta_1) / \sqrt 2`.
"""

import math

import numpy as np


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t1, t2 = float(theta[0]), float(theta[1])
    a = rng.uniform(-math.pi / 2, math.pi / 2)
    r = rng.normal(0.1, 0.01)
    x1 = r * math.cos(a) + 0.25 - abs(t1 + t2) / math.sqrt(2)
    x2 = r * math.sin(a) + (t2 - t1) / math.sqrt(2)
    return np.array([x1, x2])
