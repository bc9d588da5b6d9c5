r"""Every diagnostic of a grid posterior, whatever gives its density.

For test pairs :math:`(\theta^*, x^*)` and one or several posteriors :math:`\hat p(\theta
\mid x^*)` given as unnormalised log densities on the grid of :mod:`bnre.evaluation.coverage`, one
pass over the grid gives, per pair and posterior: the HPD rank of :math:`\theta^*` and the
normaliser, the HPD region sizes, the posterior mean and variance, the SBC and marginal
HPD ranks and the TARP credibility of :mod:`bnre.evaluation.calibration` and, given the exact
posterior, the grid KL divergence and total variation to it. :func:`tables` turns them
into the tidy tables of :class:`Evaluation`. :mod:`bnre.evaluation.evaluate` feeds it trained
estimators; :func:`evaluate_exact` the exact posterior of a tractable task, with no
network code involved.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..tasks import Task
from .calibration import ecdf_difference, kl_divergence, tarp_auc, tarp_credibility, total_variation, uniformity_pvalue
from .coverage import GRID_BATCH, clopper_pearson, coverage_auc, coverage_curve
from .grids import GridSpec, UniformGrid, posterior_pass
from .partition import (
    hdr_sizes,
    hpd_ranks,
    log_masses,
    marginal_cdf,
    marginal_hpd_ranks,
    moments,
    sample,
    unresolved,
)

#: Levels at which the coverage curve is stored.
CURVE_LEVELS = np.round(np.linspace(0.0, 1.0, 101), 2)

#: Levels whose expected HDR size is also reported as a metric.
HDR_LEVELS = (0.5, 0.9, 0.95)

#: Draws per observation from each grid posterior for TARP.
TARP_SAMPLES = 1000


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
    spec: GridSpec,
    rows: int,
    exact=None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Tensor]:
    r"""Every per-pair diagnostic of every estimator, in one pass over the posterior grid.

    ``log_density`` is as in :func:`bnre.evaluation.grids.posterior_pass`, ``log_true`` (E, N) its
    value at the true parameters ``theta`` (N, D), ``spec`` the grid (uniform or adaptive).
    Returns tensors (E, N, ...): ``rank``, ``log_z`` (:math:`\log \int \tilde p`, cell
    volumes included), ``hdr`` (per :data:`CURVE_LEVELS`), ``mean`` and ``var`` (per
    parameter), ``sbc`` and ``marginal_rank`` (per parameter), ``tarp`` (the TARP
    credibility from :data:`TARP_SAMPLES` exact draws of the grid posterior, one uniform
    reference point per pair shared by every estimator), ``unresolved`` (1 where the rank
    is beyond the grid's resolution, :func:`bnre.evaluation.partition.unresolved`), ``evaluations``
    (density evaluations per pair) and, given the ``exact`` log posterior of the same form,
    ``kl_exact`` and ``tv_exact`` on the same cells (on the adaptive grid, those refined for
    the estimators).
    """
    lower, upper = task.lower, task.upper
    box_volume = float(np.prod(np.asarray(upper, np.float64) - np.asarray(lower, np.float64)))
    sampler = torch.Generator(device=theta.device).manual_seed(seed)
    box = torch.Generator().manual_seed(seed + 1)
    references = torch.as_tensor(lower) + torch.as_tensor(upper - lower) * torch.rand(
        (len(theta), task.theta_dim), generator=box, dtype=torch.float64
    )
    parts: dict[str, list[Tensor]] = defaultdict(list)
    passes = posterior_pass(
        log_density, len(theta), lower, upper, spec, rows, log_true, exact, theta, theta.device, dtype
    )
    for batch in passes:
        log_grid, partition = batch.log_density, batch.partition  # (E, n, G)
        log_mass = batch.log_masses()
        mass = log_mass.exp()
        truth, theta_b = log_true[:, batch.rows], theta[batch.rows]
        mean, variance = moments(mass, partition)
        samples = sample(mass, partition, TARP_SAMPLES, sampler)
        values = {
            "rank": hpd_ranks(log_grid, truth, mass),
            "log_z": batch.log_normaliser(),
            "hdr": hdr_sizes(log_grid, mass, partition, box_volume, CURVE_LEVELS),
            "mean": mean,
            "var": variance,
            "sbc": marginal_cdf(mass, partition, theta_b),
            "marginal_rank": marginal_hpd_ranks(mass, partition, theta_b),
            "tarp": tarp_credibility(samples, theta_b, lower, upper, references[batch.rows]),
            "unresolved": unresolved(log_grid, truth, mass, partition, theta_b).double(),
            "evaluations": torch.full(truth.shape, float(batch.evaluations), dtype=torch.float64),
        }
        if batch.log_exact is not None:
            # both read as piecewise constant on the same cells (the correction is the
            # estimators' own, from their values at neighbouring cells)
            log_exact_mass, log_midpoint_mass = log_masses(batch.log_exact, partition), log_masses(log_grid, partition)
            values["kl_exact"] = kl_divergence(log_exact_mass, log_midpoint_mass)
            values["tv_exact"] = total_variation(log_exact_mass.exp(), log_midpoint_mass.exp())
        for key, value in values.items():
            parts[key].append(value.cpu())
    return {key: torch.cat(value, dim=1) for key, value in parts.items()}


def _band(successes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    return clopper_pearson(np.round(successes * n), n)


def tables(
    task: Task, names: Sequence[str], diagnostics: dict[str, Tensor], theta: Tensor, log_post: Tensor,
    log_post_unnorm: Tensor, extra: dict[str, Tensor] | None = None, rank: np.ndarray | None = None,
) -> Evaluation:
    """The tidy tables of :class:`Evaluation` from :func:`grid_diagnostics`' output.

    ``theta`` (N, D) are the true parameters, ``log_post`` and ``log_post_unnorm`` (E, N)
    the log posterior there; ``extra``
    maps further metric names to one value per estimator (E,); ``rank`` replaces the
    grid ranks (e.g. MCMC ranks). ``names`` label the E estimators; with one name,
    its rows are written under that name and again as ``ensemble``.
    """
    d = {key: value.cpu() for key, value in diagnostics.items()}
    rank = d["rank"].numpy() if rank is None else rank
    n = rank.shape[1]
    log_prior = float(task.prior.log_prob(theta.double().cpu()).mean())  # the prior's expected log density
    hdr = d["hdr"].mean(dim=1).numpy()  # (E, L)
    error = d["mean"] - theta.double().cpu()  # (E, N, D)
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
        values["unresolved_fraction"] = float(d["unresolved"][i].mean())
        values["grid_evaluations"] = float(d["evaluations"][i].mean())
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
        diagnostic_rows = [
            dict(diagnostic=diagnostic, parameter=parameter, level=level, value=v, lower=a, upper=b)
            for diagnostic, parameter, curve in diagnostic_curves
            for level, v, a, b in zip(CURVE_LEVELS, curve, *_band(curve, n))
        ]
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
            calibration += [dict(replicate=replicate, **row) for row in diagnostic_rows]
            pairs.append(pd.DataFrame(dict(replicate=replicate, **per_pair)))
    return Evaluation(pd.DataFrame(metrics), pd.DataFrame(curves), pd.concat(pairs, ignore_index=True), pd.DataFrame(calibration))


@torch.no_grad()
def evaluate_exact(
    task: Task, theta: np.ndarray, x: np.ndarray, bins: int, device: str = "cpu", seed: int = 0,
    grid_spec: GridSpec | None = None,
) -> Evaluation:
    """The same diagnostics for the exact posterior of a tractable task on the same grid
    (its discretisation included): the ceiling of the log posterior and the reference
    coverage. The grid is ``grid_spec``, by default the uniform grid of ``bins`` per
    dimension. Its rows are labelled ``ensemble``."""
    if not task.tractable:
        raise ValueError(f"{task.name}: the likelihood is not tractable, there is no exact posterior")
    theta_t = torch.as_tensor(theta, device=device).double()
    x_t = torch.as_tensor(x, device=device)
    exact = exact_log_posterior(task, x_t)
    log_true = exact(theta_t[:, None], slice(0, len(theta_t)))[..., 0]  # (1, N)
    spec = grid_spec or UniformGrid(bins)
    d = grid_diagnostics(task, exact, log_true, theta_t, spec, GRID_BATCH, seed=seed, dtype=torch.float64)
    log_post = (log_true - d["log_z"]).cpu()
    return tables(task, ["ensemble"], d, theta_t, log_post, log_true.cpu())
