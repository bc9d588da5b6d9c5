"""A check shared by the tasks' likelihood tests: calibration of the exact grid posterior."""

import numpy as np
import torch
from scipy import stats

from bnre.evaluation.coverage import grid, ranks


def grid_rank_pvalue(task, prior, bins: int, pairs: int = 500, seed: int = 0):
    r"""A function ``log_likelihood -> p-value``: the KS test of uniformity of the grid
    ranks of :math:`\theta^*` under ``prior`` × ``log_likelihood``, over ``pairs``
    pairs :math:`(\theta^*, x^*)` from ``prior`` × ``task.simulate``.

    The ranks are uniform for the true likelihood whatever the prior (up to the grid's
    discretisation), so a wrong likelihood passed to the same function is rejected.
    """
    rng = np.random.default_rng(seed)
    theta = prior.sample(pairs, rng)
    x = torch.as_tensor(task.simulate(theta, rng))[:, None]
    theta = torch.as_tensor(theta)[:, None]
    cells = grid(prior.lower, prior.upper, bins)[0].double()[None]

    def ks_pvalue(log_likelihood) -> float:
        r = ranks(log_likelihood(cells, x), log_likelihood(theta, x)[:, 0])
        return stats.kstest(r.numpy(), "uniform").pvalue

    return ks_pvalue
