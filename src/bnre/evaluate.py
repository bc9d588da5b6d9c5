r"""Diagnostics of trained ratio estimators and of their ensemble.

For each member :math:`k` and for the ensemble
:math:`\log \hat r_{ens} = \log \frac1K \sum_k \exp \log \hat r_k`, on test pairs
:math:`(\theta^*, x^*)`:

* expected coverage from grid ranks (:mod:`bnre.coverage`) and its AUC;
* expected log posterior density :math:`\mathbb{E}[\log \hat p(\theta^* \mid x^*)]`, with
  :math:`\hat p(\theta \mid x) \propto p(\theta)\hat r(\theta, x)` normalised on the grid
  (``log_posterior``) and unnormalised (``log_posterior_unnormalised``);
* the balancing value :math:`\mathbb{E}_{p(\theta,x)}[d] + \mathbb{E}_{p(\theta)p(x)}[d]`
  with marginal pairs from rolling :math:`\theta^*`;
* the expected size of the highest-density regions (fraction of the prior box);
* the bias :math:`\mathbb{E}[\mu - \theta^*]` and variance :math:`\mathbb{V}[\mu - \theta^*]`
  of the posterior mean :math:`\mu = \mathbb{E}_{\hat p(\theta \mid x^*)}[\theta]`, and the
  mean posterior standard deviation, per parameter.

Each observation is embedded once per member; only the head is evaluated on the grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .coverage import (
    clopper_pearson,
    coverage_auc,
    coverage_curve,
    grid,
    grid_batches,
    grid_moments,
    grid_pass,
    grid_ranks,
    hdr_sizes,
    ranks,
)
from .ensemble import Ensemble
from .losses import marginal_theta
from .nn import RatioEstimator
from .tasks import Task

#: Levels at which the coverage curve is stored.
CURVE_LEVELS = np.round(np.linspace(0.0, 1.0, 101), 2)

#: Levels whose expected HDR size is also reported as a metric.
HDR_LEVELS = (0.5, 0.9, 0.95)


def log_posterior_on(ensemble: Ensemble, log_prior: float):
    """The unnormalised log posterior ``(theta, rows) -> (E, n, G)`` of every estimator."""

    def log_density(theta: Tensor, rows: slice) -> Tensor:
        return ensemble.log_ratio(theta, rows) + log_prior

    return log_density


@torch.no_grad()
def coverage_ranks(
    task: Task, members: Sequence[RatioEstimator], theta: np.ndarray, x: np.ndarray, bins: int, device: str = "cpu"
) -> Tensor:
    """Grid ranks of ``theta`` (N, D) for every estimator: (K [+ 1], N)."""
    theta_t = torch.as_tensor(theta, device=device)
    cells, _ = grid(task.lower, task.upper, bins)
    ensemble = Ensemble(members, torch.as_tensor(x, device=device))
    log_density = log_posterior_on(ensemble, -task.prior.log_volume)
    rank, _ = grid_ranks(log_density, theta_t, cells.to(device), ensemble.rows)
    return rank.cpu()


@torch.no_grad()
def posterior_grid(members: Sequence[RatioEstimator], x: Tensor, task: Task, bins: int) -> np.ndarray:
    """Cell masses of the ensemble's posterior of one observation ``x`` (1, ...) on a grid
    of ``bins`` cells per dimension, shaped (bins,) * D."""
    cells, _ = grid(task.lower, task.upper, bins)
    ensemble = Ensemble(members, x)
    (batch,) = grid_pass(log_posterior_on(ensemble, -task.prior.log_volume), 1, cells, len(cells))
    return batch.mass[-1, 0].reshape((bins,) * task.theta_dim).cpu().numpy()


@torch.no_grad()
def monte_carlo_ranks(task: Task, estimators: Ensemble, theta: Tensor, samples: int, seed: int, chains: int = 8) -> Tensor:
    """MCMC ranks (E, N) of every estimator, in batches of observations."""
    from .mcmc import mc_ranks, metropolis

    lower = torch.as_tensor(task.lower, dtype=torch.float32, device=theta.device)
    upper = torch.as_tensor(task.upper, dtype=torch.float32, device=theta.device)
    generator = torch.Generator(device=theta.device).manual_seed(seed)
    per_chain = max(1, samples // chains)
    out = []
    for rows in grid_batches(len(theta), chains * per_chain * 4, estimators.rows):
        columns = []
        for e in range(len(estimators.names) if len(estimators.members) > 1 else 1):

            def log_density(q: Tensor, e: int = e, rows: slice = rows) -> Tensor:
                return estimators.log_ratio(q, rows)[e] + task.prior.log_prob(q)

            draws = metropolis(log_density, lower, upper, (rows.stop - rows.start, chains), per_chain, generator=generator)
            columns.append(mc_ranks(log_density, theta[rows], draws))
        out.append(torch.stack(columns))
    return torch.cat(out, dim=1)


@torch.no_grad()
def evaluate(
    task: Task,
    members: Sequence[RatioEstimator],
    theta: np.ndarray,
    x: np.ndarray,
    bins: int,
    device: str = "cpu",
    coverage: str = "grid",
    mc_samples: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate members and their ensemble on test pairs.

    With ``coverage="mc"`` the ranks (hence coverage) come from ``mc_samples`` MCMC
    samples per observation (:mod:`bnre.mcmc`) instead of the grid; the grid still
    gives the other diagnostics. Returns three tidy tables: metrics (replicate, metric, value), the coverage curve
    (replicate, level, coverage, its 95% Clopper–Pearson interval ``lower`` and
    ``upper``, mean ``hdr_size``) and per-pair ranks (replicate, pair, rank,
    log_posterior). ``replicate`` is a member index or ``ensemble``.
    """
    theta_t = torch.as_tensor(theta, device=device)
    n = len(theta_t)
    cells, log_volume = grid(task.lower, task.upper, bins)
    cells = cells.to(device)
    log_prior = -task.prior.log_volume
    estimators = Ensemble(members, torch.as_tensor(x, device=device))
    everything = slice(0, n)

    log_r_true = estimators.log_ratio(theta_t[:, None], everything)[..., 0]  # (E, N)
    log_r_marg = estimators.log_ratio(marginal_theta(theta_t)[:, None], everything)[..., 0]
    log_post_unnorm = (log_r_true + log_prior).double()
    k = len(log_r_true)

    parts: dict[str, list[Tensor]] = {"rank": [], "log_z": [], "hdr": [], "mean": [], "var": []}
    for batch in grid_pass(log_posterior_on(estimators, log_prior), n, cells, estimators.rows):
        log_grid, mass = batch.log_density.reshape(-1, len(cells)), batch.mass.reshape(-1, len(cells))
        mean, variance = grid_moments(mass, cells)
        truth = (log_r_true[:, batch.rows] + log_prior).reshape(-1)
        for key, value in (
            ("rank", ranks(log_grid, truth, mass)),
            ("log_z", torch.logsumexp(log_grid.double(), dim=-1)),
            ("hdr", hdr_sizes(mass, CURVE_LEVELS)),
            ("mean", mean),
            ("var", variance),
        ):
            parts[key].append(value.reshape(k, -1, *value.shape[1:]))
    rank, log_z, hdr, mean, variance = (torch.cat(parts[key], dim=1) for key in parts)
    if coverage == "mc":
        rank = monte_carlo_ranks(task, estimators, theta_t, mc_samples, seed)
    elif coverage != "grid":
        raise ValueError(f"unknown coverage method {coverage!r}; expected 'grid' or 'mc'")

    log_post = (log_post_unnorm - log_z - log_volume).cpu()
    log_post_unnorm = log_post_unnorm.cpu()
    balancing = (torch.sigmoid(log_r_true).mean(dim=1) + torch.sigmoid(log_r_marg).mean(dim=1)).cpu()
    hdr = hdr.mean(dim=1).cpu().numpy()  # (E, L)
    error = (mean - theta_t.double()).cpu()  # (E, N, D)
    posterior_std = variance.sqrt().mean(dim=1).cpu()  # (E, D)
    rank = rank.cpu().numpy()

    metrics, curves, pairs = [], [], []
    names = estimators.names if k > 1 else ["0"]
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
        for level in HDR_LEVELS:
            values[f"hdr_size_{level:.2f}"] = float(hdr[i][np.isclose(CURVE_LEVELS, level)][0])
        for d, label in enumerate(task.labels):
            values[f"posterior_mean_bias_{label}"] = float(error[i, :, d].mean())
            values[f"posterior_mean_variance_{label}"] = float(error[i, :, d].var())
            values[f"posterior_std_{label}"] = float(posterior_std[i, d])
        coverage = coverage_curve(rank[i], CURVE_LEVELS)
        lower, upper = clopper_pearson(np.round(coverage * n), n)
        # with a single member, the ensemble is that member
        for label in [name] if len(members) > 1 else [name, "ensemble"]:
            metrics += [dict(replicate=label, metric=m, value=v) for m, v in values.items()]
            curves += [
                dict(replicate=label, level=level, coverage=c, lower=lo, upper=hi, hdr_size=size)
                for level, c, lo, hi, size in zip(CURVE_LEVELS, coverage, lower, upper, hdr[i])
            ]
            pairs.append(
                pd.DataFrame(dict(replicate=label, pair=np.arange(n), rank=rank[i], log_posterior=log_post[i].numpy()))
            )
    return pd.DataFrame(metrics), pd.DataFrame(curves), pd.concat(pairs, ignore_index=True)


def with_kept_epochs(metrics: pd.DataFrame, kept_epochs: Sequence[int] | None) -> pd.DataFrame:
    """The metrics table with ``kept_epoch``: the epoch each member's weights come from
    (the model file's ``kept_epochs``), and their mean for the ensemble."""
    if not kept_epochs:
        return metrics
    rows = [dict(replicate=str(k), metric="kept_epoch", value=float(e)) for k, e in enumerate(kept_epochs)]
    rows.append(dict(replicate="ensemble", metric="kept_epoch", value=float(np.mean(kept_epochs))))
    return pd.concat([metrics, pd.DataFrame(rows)], ignore_index=True)
