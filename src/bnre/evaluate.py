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
  mean posterior standard deviation, per parameter;
* calibration beyond HPD coverage (:mod:`bnre.calibration`): SBC ranks of each marginal
  with a KS uniformity test, 1-D marginal HPD coverage per parameter, and TARP expected
  coverage from draws of the grid posterior;
* for a task with a tractable likelihood, KL(p ‖ p̂) and total variation to the exact
  posterior on the same grid; :func:`evaluate_exact` gives every diagnostic of the exact
  posterior itself (the ceiling of the log posterior, the grid's own coverage).

Each observation is embedded once per member; only the head is evaluated on the grid.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .calibration import (
    ecdf_difference,
    kl_divergence,
    marginal_hpd_ranks,
    sample_grid,
    sbc_ranks,
    tarp_auc,
    tarp_credibility,
    total_variation,
    uniformity_pvalue,
)
from .coverage import (
    GRID_BATCH,
    cell_mass,
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

#: Draws per observation from each grid posterior for TARP.
TARP_SAMPLES = 1000


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


class Evaluation(NamedTuple):
    """The tidy tables of one evaluation; ``replicate`` is a member index or ``ensemble``.

    * ``metrics``: replicate, metric, value;
    * ``curves``: the HPD coverage curve, replicate, level, coverage, its 95%
      Clopper–Pearson interval ``lower`` and ``upper``, mean ``hdr_size``;
    * ``pairs``: per test pair, replicate, pair, rank, log_posterior, the TARP
      credibility ``tarp``, the SBC rank ``sbc_<label>`` of each parameter and, for a
      tractable task, ``kl_exact`` and ``tv_exact``;
    * ``calibration``: replicate, diagnostic (``sbc``, ``marginal_hpd``, ``tarp``),
      parameter (a label, or ``joint`` for TARP), level, value (the ECDF of the SBC
      ranks, the marginal HPD coverage, the TARP coverage), ``lower`` and ``upper``.
    """

    metrics: pd.DataFrame
    curves: pd.DataFrame
    pairs: pd.DataFrame
    calibration: pd.DataFrame


def exact_log_posterior(task: Task, x: Tensor):
    r"""The unnormalised exact log posterior ``(theta, rows) -> (1, n, G)`` of a tractable
    task, :math:`\log p(\theta) + \log p(x \mid \theta)`, in float64."""
    x = x.double()

    def log_density(theta: Tensor, rows: slice) -> Tensor:
        theta = theta.double()
        log_lik = task.log_likelihood(theta, x[rows].reshape(-1, *([1] * (theta.dim() - 2)), *x.shape[1:]))
        return (task.prior.log_prob(theta) + log_lik)[None]

    return log_density


def grid_diagnostics(
    task: Task,
    log_density,
    log_true: Tensor,
    theta: Tensor,
    cells: Tensor,
    bins: int,
    rows: int,
    exact=None,
    seed: int = 0,
) -> dict[str, Tensor]:
    r"""Every per-pair grid diagnostic of every estimator, in one pass over the grid.

    ``log_density`` is as in :func:`bnre.coverage.grid_pass`, ``log_true`` (E, N) its value
    at the true parameters ``theta`` (N, D). Returns tensors (E, N, ...): ``rank``,
    ``log_z``, ``hdr`` (per :data:`CURVE_LEVELS`), ``mean`` and ``var`` (per parameter),
    ``sbc`` and ``marginal_rank`` (per parameter, :mod:`bnre.calibration`), ``tarp`` (the
    TARP credibility from :data:`TARP_SAMPLES` draws of the grid posterior, one uniform
    reference point per pair shared by every estimator) and, given the ``exact`` log
    posterior of the same form, ``kl_exact`` and ``tv_exact``.
    """
    lower, upper = task.lower, task.upper
    sampler = torch.Generator(device=theta.device).manual_seed(seed)
    box = torch.Generator().manual_seed(seed + 1)
    references = torch.as_tensor(lower) + torch.as_tensor(upper - lower) * torch.rand(
        (len(theta), task.theta_dim), generator=box, dtype=torch.float64
    )
    parts: dict[str, list[Tensor]] = defaultdict(list)
    for batch in grid_pass(log_density, len(theta), cells, rows):
        log_grid, mass = batch.log_density, batch.mass  # (E, n, G)
        k, n, g = log_grid.shape
        truth, theta_b = log_true[:, batch.rows], theta[batch.rows]
        mean, variance = grid_moments(mass.reshape(-1, g), cells)
        samples = sample_grid(mass, cells, lower, upper, bins, TARP_SAMPLES, sampler)
        values = {
            "rank": ranks(log_grid, truth, mass),
            "log_z": torch.logsumexp(log_grid.double(), dim=-1),
            "hdr": hdr_sizes(mass.reshape(-1, g), CURVE_LEVELS).reshape(k, n, -1),
            "mean": mean.reshape(k, n, -1),
            "var": variance.reshape(k, n, -1),
            "sbc": sbc_ranks(mass, theta_b, lower, upper, bins),
            "marginal_rank": marginal_hpd_ranks(mass, theta_b, lower, upper, bins),
            "tarp": tarp_credibility(samples, theta_b, lower, upper, references[batch.rows]),
        }
        if exact is not None:
            log_exact = exact(cells[None], batch.rows)
            values["kl_exact"] = kl_divergence(log_exact, log_grid)
            values["tv_exact"] = total_variation(cell_mass(log_exact), mass)
        for key, value in values.items():
            parts[key].append(value)
    return {key: torch.cat(value, dim=1) for key, value in parts.items()}


def _band(successes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    return clopper_pearson(np.round(successes * n), n)


def tables(
    task: Task, names: Sequence[str], diagnostics: dict[str, Tensor], log_post: Tensor, log_post_unnorm: Tensor,
    extra: dict[str, Tensor] | None = None, rank: np.ndarray | None = None,
) -> Evaluation:
    """The tidy tables of :class:`Evaluation` from :func:`grid_diagnostics`' output.

    ``log_post`` and ``log_post_unnorm`` are (E, N) at the true parameters; ``extra``
    maps further metric names to one value per estimator (E,); ``rank`` replaces the
    grid ranks (e.g. MCMC ranks). ``names`` label the E estimators; with one name,
    its rows are written under that name and again as ``ensemble``.
    """
    d = {key: value.cpu() for key, value in diagnostics.items()}
    rank = d["rank"].numpy() if rank is None else rank
    n = rank.shape[1]
    log_prior = -task.prior.log_volume
    hdr = d["hdr"].mean(dim=1).numpy()  # (E, L)
    error = d["mean"] - d["theta"]  # (E, N, D)
    posterior_std = d["var"].sqrt().mean(dim=1)  # (E, D)
    sbc, marginal, tarp = d["sbc"].numpy(), d["marginal_rank"].numpy(), d["tarp"].numpy()
    metrics, curves, pairs, calibration = [], [], [], []
    for i, name in enumerate(names):
        values = {
            "coverage_auc": coverage_auc(rank[i]),
            "log_posterior": float(log_post[i].mean()),
            "log_posterior_unnormalised": float(log_post_unnorm[i].mean()),
            "log_prior": log_prior,
        }
        values.update({key: float(value[i]) for key, value in (extra or {}).items()})
        values["test_pairs"] = n
        for level in HDR_LEVELS:
            values[f"hdr_size_{level:.2f}"] = float(hdr[i][np.isclose(CURVE_LEVELS, level)][0])
        for p, label in enumerate(task.labels):
            values[f"posterior_mean_bias_{label}"] = float(error[i, :, p].mean())
            values[f"posterior_mean_variance_{label}"] = float(error[i, :, p].var())
            values[f"posterior_std_{label}"] = float(posterior_std[i, p])
            values[f"sbc_ks_pvalue_{label}"] = uniformity_pvalue(sbc[i, :, p])
            values[f"marginal_coverage_auc_{label}"] = coverage_auc(marginal[i, :, p])
        values["tarp_auc"] = tarp_auc(tarp[i])
        values["tarp_ks_pvalue"] = uniformity_pvalue(tarp[i])
        for key in ("kl_exact", "tv_exact"):
            if key in d:
                values[key] = float(d[key][i].mean())
        coverage = coverage_curve(rank[i], CURVE_LEVELS)
        lower, upper = _band(coverage, n)
        diagnostic_curves = [("tarp", "joint", coverage_curve(tarp[i], CURVE_LEVELS))]
        for p, label in enumerate(task.labels):
            diagnostic_curves.append(("sbc", label, ecdf_difference(sbc[i, :, p], CURVE_LEVELS) + CURVE_LEVELS))
            diagnostic_curves.append(("marginal_hpd", label, coverage_curve(marginal[i, :, p], CURVE_LEVELS)))
        per_pair = dict(pair=np.arange(n), rank=rank[i], log_posterior=log_post[i].numpy(), tarp=tarp[i])
        per_pair.update({f"sbc_{label}": sbc[i, :, p] for p, label in enumerate(task.labels)})
        per_pair.update({key: d[key][i].numpy() for key in ("kl_exact", "tv_exact") if key in d})
        # with a single estimator, the ensemble is that estimator
        for replicate in [name] if len(names) > 1 or name == "ensemble" else [name, "ensemble"]:
            metrics += [dict(replicate=replicate, metric=m, value=v) for m, v in values.items()]
            curves += [
                dict(replicate=replicate, level=level, coverage=c, lower=lo, upper=hi, hdr_size=size)
                for level, c, lo, hi, size in zip(CURVE_LEVELS, coverage, lower, upper, hdr[i])
            ]
            for diagnostic, parameter, curve in diagnostic_curves:
                lo, hi = _band(curve, n)
                calibration += [
                    dict(replicate=replicate, diagnostic=diagnostic, parameter=parameter, level=level, value=v, lower=a, upper=b)
                    for level, v, a, b in zip(CURVE_LEVELS, curve, lo, hi)
                ]
            pairs.append(pd.DataFrame(dict(replicate=replicate, **per_pair)))
    return Evaluation(pd.DataFrame(metrics), pd.DataFrame(curves), pd.concat(pairs, ignore_index=True), pd.DataFrame(calibration))


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
) -> Evaluation:
    """Evaluate members and their ensemble on test pairs (:class:`Evaluation`).

    With ``coverage="mc"`` the ranks (hence coverage) come from ``mc_samples`` MCMC
    samples per observation (:mod:`bnre.mcmc`) instead of the grid; the grid still
    gives the other diagnostics. For a tractable task every estimator is also compared
    with the exact posterior on the grid (``kl_exact``, ``tv_exact``).
    """
    if coverage not in ("grid", "mc"):
        raise ValueError(f"unknown coverage method {coverage!r}; expected 'grid' or 'mc'")
    theta_t = torch.as_tensor(theta, device=device)
    x_t = torch.as_tensor(x, device=device)
    n = len(theta_t)
    cells, log_volume = grid(task.lower, task.upper, bins)
    cells = cells.to(device)
    log_prior = -task.prior.log_volume
    estimators = Ensemble(members, x_t)
    everything = slice(0, n)

    log_r_true = estimators.log_ratio(theta_t[:, None], everything)[..., 0]  # (E, N)
    log_r_marg = estimators.log_ratio(marginal_theta(theta_t)[:, None], everything)[..., 0]
    log_post_unnorm = (log_r_true + log_prior).double()
    exact = exact_log_posterior(task, x_t) if task.tractable else None
    d = grid_diagnostics(
        task, log_posterior_on(estimators, log_prior), log_r_true + log_prior, theta_t, cells, bins, estimators.rows,
        exact=exact, seed=seed,
    )
    d["theta"] = theta_t.double().expand(len(log_r_true), -1, -1)
    rank = monte_carlo_ranks(task, estimators, theta_t, mc_samples, seed).cpu().numpy() if coverage == "mc" else None
    log_post = (log_post_unnorm - d["log_z"] - log_volume).cpu()
    balancing = torch.sigmoid(log_r_true).mean(dim=1) + torch.sigmoid(log_r_marg).mean(dim=1)
    extra = {"balancing": balancing.cpu(), "balancing_error": (balancing - 1).cpu()}
    names = estimators.names if len(log_r_true) > 1 else ["0"]
    return tables(task, names, d, log_post, log_post_unnorm.cpu(), extra, rank)


@torch.no_grad()
def evaluate_exact(task: Task, theta: np.ndarray, x: np.ndarray, bins: int, device: str = "cpu", seed: int = 0) -> Evaluation:
    """The same diagnostics for the exact posterior of a tractable task on the same grid
    (its discretisation included): the ceiling of the log posterior and the reference
    coverage. Its rows are labelled ``ensemble``."""
    if not task.tractable:
        raise ValueError(f"{task.name}: the likelihood is not tractable, there is no exact posterior")
    theta_t = torch.as_tensor(theta, device=device).double()
    x_t = torch.as_tensor(x, device=device)
    cells, log_volume = grid(task.lower, task.upper, bins)
    exact = exact_log_posterior(task, x_t)
    log_true = exact(theta_t[:, None], slice(0, len(theta_t)))[..., 0]  # (1, N)
    d = grid_diagnostics(task, exact, log_true, theta_t, cells.to(device), bins, GRID_BATCH, seed=seed)
    d["theta"] = theta_t[None]
    log_post = (log_true - d["log_z"] - log_volume).cpu()
    return tables(task, ["ensemble"], d, log_post, log_true.cpu())


def with_kept_epochs(metrics: pd.DataFrame, kept_epochs: Sequence[int] | None) -> pd.DataFrame:
    """The metrics table with ``kept_epoch``: the epoch each member's weights come from
    (the model file's ``kept_epochs``), and their mean for the ensemble."""
    if not kept_epochs:
        return metrics
    rows = [dict(replicate=str(k), metric="kept_epoch", value=float(e)) for k, e in enumerate(kept_epochs)]
    rows.append(dict(replicate="ensemble", metric="kept_epoch", value=float(np.mean(kept_epochs))))
    return pd.concat([metrics, pd.DataFrame(rows)], ignore_index=True)
