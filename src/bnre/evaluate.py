r"""Diagnostics of trained ratio estimators and of their ensemble.

For each member :math:`k` and for the ensemble
:math:`\log \hat r_{ens} = \log \frac1K \sum_k \exp \log \hat r_k`, on test pairs
:math:`(\theta^*, x^*)`:

* expected coverage from grid ranks (:mod:`bnre.coverage`) and its AUC;
* expected log posterior density :math:`\mathbb{E}[\log \hat p(\theta^* \mid x^*)]`, with
  :math:`\hat p(\theta \mid x) \propto p(\theta)\hat r(\theta, x)` normalised on the grid
  (``log_posterior``) and unnormalised (``log_posterior_unnormalised``);
* the balancing value :math:`\mathbb{E}_{p(\theta,x)}[d] + \mathbb{E}_{p(\theta)p(x)}[d]`
  with marginal pairs from rolling :math:`\theta^*`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .coverage import clopper_pearson, coverage_auc, coverage_curve, grid, ranks
from .losses import marginal_theta
from .nn import RatioEstimator
from .tasks import Task

#: Levels at which the coverage curve is stored.
CURVE_LEVELS = np.round(np.linspace(0.0, 1.0, 101), 2)


def member_log_ratios(members: Sequence[RatioEstimator], theta: Tensor, embeddings: Tensor) -> Tensor:
    """Log-ratios of all members, (K, n, G), from per-member embeddings (K, n, E)."""
    return torch.stack([m.head_log_ratio(theta, e[:, None, :]) for m, e in zip(members, embeddings)])


def with_ensemble(log_ratios: Tensor) -> Tensor:
    """Append the ensemble's log-ratio, log-mean-exp over members, as the last row."""
    ensemble = torch.logsumexp(log_ratios, dim=0, keepdim=True) - math.log(len(log_ratios))
    return torch.cat([log_ratios, ensemble])


@torch.no_grad()
def evaluate(
    task: Task,
    members: Sequence[RatioEstimator],
    theta: np.ndarray,
    x: np.ndarray,
    bins: int,
    batch: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate members and their ensemble on test pairs.

    Returns three tidy tables: metrics (replicate, metric, value), the coverage curve
    (replicate, level, coverage, lower, upper) and per-pair ranks (replicate, pair,
    rank, log_posterior).
    """
    theta_t, x_t = torch.as_tensor(theta), torch.as_tensor(x)
    cells, log_volume = grid(task.lower, task.upper, bins)
    log_prior = -task.prior.log_volume
    names = [str(k) for k in range(len(members))] + ["ensemble"]
    if batch is None:
        batch = max(1, 2**21 // len(cells))

    embeddings = torch.stack([m.embed(x_t) for m in members])  # (K, N, E)

    def log_ratio(theta_query: Tensor, rows: slice) -> Tensor:
        """(K + 1, n, G) log-ratios of members and ensemble; theta_query (n or 1, G, D)."""
        return with_ensemble(member_log_ratios(members, theta_query, embeddings[:, rows]))

    n = len(theta_t)
    everything = slice(0, n)
    log_r_true = log_ratio(theta_t[:, None], everything)[..., 0]  # (K + 1, N)
    log_r_marg = log_ratio(marginal_theta(theta_t)[:, None], everything)[..., 0]
    log_post_unnorm = (log_r_true + log_prior).double()

    all_ranks, all_log_z = [], []
    for a in range(0, n, batch):
        rows = slice(a, min(a + batch, n))
        log_grid = log_ratio(cells[None], rows) + log_prior  # (K + 1, n, G)
        flat = log_grid.reshape(-1, len(cells))
        all_ranks.append(ranks(flat, log_post_unnorm[:, rows].reshape(-1).float()).reshape(len(names), -1))
        all_log_z.append(torch.logsumexp(flat.double(), dim=-1).reshape(len(names), -1))
    rank = torch.cat(all_ranks, dim=1).numpy()  # (K + 1, N)
    log_z = torch.cat(all_log_z, dim=1)

    log_post = log_post_unnorm - log_z - log_volume
    balancing = torch.sigmoid(log_r_true).mean(dim=1) + torch.sigmoid(log_r_marg).mean(dim=1)

    metrics, curves, pairs = [], [], []
    for i, name in enumerate(names):
        values = {
            "coverage_auc": coverage_auc(rank[i]),
            "log_posterior": float(log_post[i].mean()),
            "log_posterior_unnormalised": float(log_post_unnorm[i].mean()),
            "log_prior": log_prior,
            "balancing": float(balancing[i]),
            "balancing_error": float(balancing[i] - 1),
            "test_pairs": n,
        }
        metrics += [dict(replicate=name, metric=m, value=v) for m, v in values.items()]
        coverage = coverage_curve(rank[i], CURVE_LEVELS)
        lower, upper = clopper_pearson(np.round(coverage * n), n)
        curves += [
            dict(replicate=name, level=level, coverage=c, lower=lo, upper=hi)
            for level, c, lo, hi in zip(CURVE_LEVELS, coverage, lower, upper)
        ]
        pairs.append(pd.DataFrame(dict(replicate=name, pair=np.arange(n), rank=rank[i], log_posterior=log_post[i].numpy())))
    return pd.DataFrame(metrics), pd.DataFrame(curves), pd.concat(pairs, ignore_index=True)
