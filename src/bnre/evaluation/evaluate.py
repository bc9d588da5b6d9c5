r"""Diagnostics of trained ratio estimators and of their ensemble.

For each member :math:`k` and for the ensemble
:math:`\log \hat r_{ens} = \log \frac1K \sum_k \exp \log \hat r_k`, on test pairs
:math:`(\theta^*, x^*)`:

* expected coverage from grid ranks (:mod:`bnre.evaluation.coverage`) and its AUC;
* expected log posterior density :math:`\mathbb{E}[\log \hat p(\theta^* \mid x^*)]`, with
  :math:`\hat p(\theta \mid x) \propto p(\theta)\hat r(\theta, x)` normalised on the grid
  (``log_posterior``) and unnormalised (``log_posterior_unnormalised``);
* the balancing value :math:`\mathbb{E}_{p(\theta,x)}[d] + \mathbb{E}_{p(\theta)p(x)}[d]`
  with marginal pairs from rolling :math:`\theta^*`;
* the expected size of the highest-density regions (fraction of the prior box);
* the bias :math:`\mathbb{E}[\mu - \theta^*]` and variance :math:`\mathbb{V}[\mu - \theta^*]`
  of the posterior mean :math:`\mu = \mathbb{E}_{\hat p(\theta \mid x^*)}[\theta]`, and the
  mean posterior standard deviation, per parameter;
* calibration beyond HPD coverage (:mod:`bnre.evaluation.calibration`): SBC ranks of each marginal
  with a KS uniformity test, 1-D marginal HPD coverage per parameter, and TARP expected
  coverage from draws of the grid posterior;
* for a task with a tractable likelihood, KL(p ‖ p̂) and total variation to the exact
  posterior on the same grid; :func:`bnre.evaluation.diagnostics.evaluate_exact` gives every diagnostic of the exact
  posterior itself (the ceiling of the log posterior, the grid's own coverage).

Each observation is embedded once per member; only the head is evaluated on the grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..methods.losses import marginal_theta
from ..nets.estimators import ConditionalEstimator
from ..tasks import Task
from .coverage import grid, grid_batches, grid_ranks
from .diagnostics import Evaluation, exact_log_posterior, grid_diagnostics, tables
from .ensemble import Ensemble
from .grids import GridSpec, UniformGrid
from .precision import GridPrecision, MixedPrecisionGrid


def log_posterior_on(ensemble: Ensemble, task: Task, precision: GridPrecision | None = None, seed: int = 0):
    r"""The unnormalised log posterior :math:`\log p(\theta) + \log \hat r(\theta, x)`,
    ``(theta, rows) -> (E, n, G)``, of every estimator: a
    :class:`~bnre.evaluation.precision.MixedPrecisionGrid` where ``precision`` takes bf16 and every
    member's head has a bf16 form, else in float32."""

    def log_density(theta: Tensor, rows: slice) -> Tensor:
        return ensemble.log_ratio(theta, rows) + task.prior.log_prob(theta)

    device = ensemble.embeddings.device
    if precision is None or not precision.uses_bf16(device) or not ensemble.supports_low_precision():
        return log_density

    def low(theta: Tensor, rows: slice) -> Tensor:
        return ensemble.log_ratio(theta, rows, low_precision=True) + task.prior.log_prob(theta)

    def at(theta: Tensor, obs: Tensor) -> Tensor:
        return ensemble.log_ratio_at(theta, obs) + task.prior.log_prob(theta)

    return MixedPrecisionGrid(log_density, low, at, precision, seed)


def precision_metrics(log_density, estimators: int) -> dict[str, Tensor]:
    """Which grid path ran, per estimator (E,): ``grid_bf16`` (1 or 0) and, for bf16, the
    fraction of cells computed in float32, of batches that fell back, and the largest
    bf16 error measured."""
    values = log_density.counts.metrics() if isinstance(log_density, MixedPrecisionGrid) else {"grid_bf16": 0.0}
    return {key: torch.full((estimators,), value, dtype=torch.float64) for key, value in values.items()}


@torch.no_grad()
def coverage_ranks(
    task: Task,
    members: Sequence[ConditionalEstimator],
    theta: np.ndarray,
    x: np.ndarray,
    bins: int,
    device: str = "cpu",
    precision: GridPrecision | None = None,
) -> Tensor:
    """Grid ranks of ``theta`` (N, D) for every estimator: (K [+ 1], N); in float32 unless
    ``precision`` says otherwise (:mod:`bnre.evaluation.precision`)."""
    theta_t = torch.as_tensor(theta, device=device)
    cells, _ = grid(task.lower, task.upper, bins)
    ensemble = Ensemble(members, torch.as_tensor(x, device=device))
    log_density = log_posterior_on(ensemble, task, precision)
    rank, _ = grid_ranks(log_density, theta_t, cells.to(device), ensemble.rows)
    return rank.cpu()


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
def sample_ranks(task: Task, estimators: Ensemble, theta: Tensor, samples: int, seed: int) -> Tensor:
    r"""Ranks (E, N) from each posterior estimator's own exact draws: the fraction of draws
    :math:`\theta_s \sim \hat p(\theta \mid x^*)` denser than :math:`\theta^*`.

    Member k's draws come from its flow (restricted to the prior box); the ensemble's from
    the mixture of the members' flows (each draw a uniformly picked member's). The error
    of each rank is binomial, :math:`\sqrt{r(1 - r)/S}`. Only for posterior estimators
    (NPE, BNPE: :class:`~bnre.nets.flows.PosteriorEstimator`).
    """
    from ..nets.flows import PosteriorEstimator

    if not all(isinstance(m, PosteriorEstimator) for m in estimators.members):
        raise ValueError(
            "coverage from the estimator's own samples needs a posterior estimator (npe, bnpe): "
            "this model's members do not sample"
        )
    generator = torch.Generator(device=theta.device).manual_seed(seed)
    k, n = len(estimators.members), len(theta)
    out = []
    for i in range(n):
        row = slice(i, i + 1)
        draws = torch.stack([m.sample(estimators.embeddings[j, i], samples, generator) for j, m in enumerate(estimators.members)])
        if k > 1:
            picks = torch.randint(0, k, (samples,), generator=generator, device=theta.device)
            draws = torch.cat([draws, draws[picks, torch.arange(samples, device=theta.device)][None]])
        truth = estimators.log_ratio(theta[row, None], row)[..., 0, 0]  # (E,)
        ranks = []
        for e, own in enumerate(draws):
            log_r = estimators.log_ratio(own[None].float(), row)[e, 0]  # (S,): the prior cancels (uniform box)
            ranks.append((log_r + task.prior.log_prob(own.float()) > truth[e] + task.prior.log_prob(theta[i].float())).double().mean())
        out.append(torch.stack(ranks))
    return torch.stack(out, dim=1)


@torch.no_grad()
def evaluate(
    task: Task,
    members: Sequence[ConditionalEstimator],
    theta: np.ndarray,
    x: np.ndarray,
    bins: int,
    device: str = "cpu",
    coverage: str = "grid",
    mc_samples: int = 1000,
    seed: int = 0,
    precision: GridPrecision | None = None,
    grid_spec: GridSpec | None = None,
) -> Evaluation:
    """Evaluate members and their ensemble on test pairs (:class:`Evaluation`).

    With ``coverage="mc"`` the ranks (hence coverage) come from ``mc_samples`` MCMC
    samples per observation (:mod:`bnre.evaluation.mcmc`) instead of the grid, with
    ``coverage="samples"`` from a posterior estimator's own draws (:func:`sample_ranks`);
    the grid still gives the other diagnostics. For a tractable task every estimator is also compared
    with the exact posterior on the grid (``kl_exact``, ``tv_exact``). ``precision``
    (:mod:`bnre.evaluation.precision`) chooses float32 or bf16 with float32 refinement for the grid
    (float32 by default); the metrics record which path ran. The grid is ``grid_spec``
    (:mod:`bnre.evaluation.grids`), by default the uniform grid of ``bins`` per dimension.
    """
    if coverage not in ("grid", "mc", "samples"):
        raise ValueError(f"unknown coverage method {coverage!r}; expected 'grid', 'mc' or 'samples'")
    theta_t = torch.as_tensor(theta, device=device)
    x_t = torch.as_tensor(x, device=device)
    n = len(theta_t)
    spec = grid_spec or UniformGrid(bins)
    log_prior = task.prior.log_prob(theta_t)  # (N,)
    estimators = Ensemble(members, x_t)
    everything = slice(0, n)

    log_r_true = estimators.log_ratio(theta_t[:, None], everything)[..., 0]  # (E, N)
    log_r_marg = estimators.log_ratio(marginal_theta(theta_t)[:, None], everything)[..., 0]
    log_post_unnorm = (log_r_true + log_prior).double()
    exact = exact_log_posterior(task, x_t) if task.tractable else None
    log_density = log_posterior_on(estimators, task, precision, seed)
    d = grid_diagnostics(
        task, log_density, log_r_true + log_prior, theta_t, spec, estimators.rows, exact=exact, seed=seed
    )
    rank = None
    if coverage == "mc":
        rank = monte_carlo_ranks(task, estimators, theta_t, mc_samples, seed).cpu().numpy()
    elif coverage == "samples":
        rank = sample_ranks(task, estimators, theta_t, mc_samples, seed).cpu().numpy()
    log_post = (log_post_unnorm.cpu() - d["log_z"])
    balancing = torch.sigmoid(log_r_true).mean(dim=1) + torch.sigmoid(log_r_marg).mean(dim=1)
    extra = {"balancing": balancing.cpu(), "balancing_error": (balancing - 1).cpu()}
    extra.update(precision_metrics(log_density, len(log_r_true)))
    names = estimators.names if len(log_r_true) > 1 else ["0"]
    return tables(task, names, d, theta_t, log_post, log_post_unnorm.cpu(), extra, rank)


def with_kept_epochs(metrics: pd.DataFrame, kept_epochs: Sequence[int] | None) -> pd.DataFrame:
    """The metrics table with ``kept_epoch``: the epoch each member's weights come from
    (the model file's ``kept_epochs``), and their mean for the ensemble."""
    if not kept_epochs:
        return metrics
    rows = [dict(replicate=str(k), metric="kept_epoch", value=float(e)) for k, e in enumerate(kept_epochs)]
    rows.append(dict(replicate="ensemble", metric="kept_epoch", value=float(np.mean(kept_epochs))))
    return pd.concat([metrics, pd.DataFrame(rows)], ignore_index=True)
