r"""M/G/1 queue, one simulation at a time, one customer at a time.

:math:`d_i = s_i + \max(0, a_i - D_{i-1})`, :math:`D_i = D_{i-1} + d_i`; x = percentiles
0, 25, 50, 75, 100 of the 50 :math:`d_i`.
"""

import numpy as np


def simulate_one(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t1, t2, rate = float(theta[0]), float(theta[1]), max(float(theta[2]), 1e-20)
    arrival, departure, d = 0.0, 0.0, []
    for _ in range(50):
        service = t1 + (t2 - t1) * rng.uniform()
        arrival += rng.exponential(1.0 / rate)
        d.append(service + max(0.0, arrival - departure))
        departure += d[-1]
    return np.percentile(d, [0, 25, 50, 75, 100])
