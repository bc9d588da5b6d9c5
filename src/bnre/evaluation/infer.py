r"""Posteriors of observed data: samples, marginal credible intervals, and the view of
one posterior that the figures draw.

For an observation :math:`x_o` and a trained ensemble,
:math:`\hat p(\theta \mid x_o) \propto p(\theta)\, \hat r_{ens}(\theta, x_o)`:

* up to :data:`MAX_GRID_DIM` parameters the posterior is the piecewise-constant density
  on a partition of the prior box (:mod:`bnre.evaluation.grids`): by default the adaptive grid,
  refined per observation where the mass and the density's variation are
  (:mod:`bnre.evaluation.adaptive`), so that a posterior narrower than a uniform cell is resolved;
  else the uniform grid of ``bins``. Draws from it are exact
  (:func:`bnre.evaluation.partition.sample`) and so are its central credible intervals, read from
  each marginal's CDF, linear between the cells' edges
  (:func:`bnre.evaluation.partition.marginal_quantiles`);
* beyond, draws come from random-walk Metropolis chains (:mod:`bnre.evaluation.mcmc`) and the
  intervals are their quantiles;
* a posterior estimator (NPE, BNPE: :mod:`bnre.nets.flows`) samples natively, whatever the
  dimension: the ensemble's density is the mixture of its members', so each draw picks a
  member uniformly and is drawn from its flow, rejected outside the prior box; the
  intervals are the draws' quantiles.

The central interval of level :math:`\alpha` of parameter :math:`\theta_d` is
:math:`[F_d^{-1}(\tfrac{1 - \alpha}{2}), F_d^{-1}(\tfrac{1 + \alpha}{2})]`.

A figure's window (:func:`plot_window`) spans, per parameter, the union over the methods
of :math:`[F_d^{-1}(0.001), F_d^{-1}(0.999)]` (:data:`WINDOW_QUANTILES`), padded by
:data:`WINDOW_PAD` of its width on each side and clipped to the prior box.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..nets.estimators import ConditionalEstimator
from ..nets.flows import PosteriorEstimator
from ..tasks import Task
from .coverage import GRID_BATCH, GRID_BATCH_CUDA
from .diagnostics import exact_log_posterior
from .ensemble import Ensemble
from .evaluate import log_posterior_on
from .grids import GridSpec, UniformGrid, posterior_pass
from .mcmc import metropolis
from .partition import marginal_quantiles, sample

#: Up to this many parameters the posterior is the grid's; beyond, MCMC's.
MAX_GRID_DIM = 3

#: Levels of the marginal credible intervals.
LEVELS = (0.5, 0.9, 0.95)

#: Metropolis chains per observation.
CHAINS = 16

#: Marginal quantiles whose union over the methods a figure's window spans.
WINDOW_QUANTILES = (0.001, 0.999)

#: Margin of a figure's window on each side, a fraction of the quantiles' span.
WINDOW_PAD = 0.1

#: Raster points per plotted parameter of :func:`posterior_view`.
RASTER_POINTS = 100

#: Raster points per parameter integrated out of :func:`raster` (midpoint rule), at most.
MARGINAL_POINTS = 40

#: Density evaluations of one raster at most: past it, the parameters integrated out get fewer points.
RASTER_EVALUATIONS = 2**22

#: ``(theta, rows) -> (E, n, G)``: unnormalised log posteriors of observations ``rows``.
LogDensity = Callable[[Tensor, slice], Tensor]


class Posterior(NamedTuple):
    """Draws (n, S, D) of the posteriors of n observations, their marginal central
    intervals (n, D, L, 2) and medians (n, D) at :data:`LEVELS`, and ``span`` (n, D, 2),
    each marginal's :data:`WINDOW_QUANTILES`; ``sampler`` is ``grid``, ``mcmc`` or ``flow``."""

    samples: np.ndarray
    intervals: np.ndarray
    medians: np.ndarray
    sampler: str
    span: np.ndarray


def read_observations(path: str | os.PathLike, task: Task) -> np.ndarray:
    """The observations in ``path``, (n, *x_shape) float32.

    ``.npy`` holds one observation (``x_shape``) or several (n, *x_shape); ``.csv`` one
    flattened observation per row (a header line is allowed); ``.h5``/``.hdf5`` a dataset
    ``x`` shaped as for ``.npy``. Refuses a shape that is not the task's and non-finite values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"observation file {path} does not exist")
    try:
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif suffix == ".csv":
            table = pd.read_csv(path, header=None, comment="#")
            if not all(isinstance(v, (int, float, np.number)) for v in table.iloc[0]):
                table = pd.read_csv(path, comment="#")
            x = table.to_numpy(dtype=np.float64)
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                if "x" not in f:
                    raise ValueError(f"{path}: no dataset 'x' (found: {', '.join(f) or 'none'})")
                x = f["x"][()]
        else:
            raise ValueError(f"{path}: unknown observation format {suffix!r}; expected .npy, .csv, .h5 or .hdf5")
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f"{path}: not a readable observation file ({error})") from None
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{path}: observations must be numbers, got dtype {x.dtype}")
    shape = tuple(task.x_shape)
    if x.shape == shape:
        x = x[None]
    elif suffix == ".csv" and x.ndim == 2 and x.shape[1] == int(np.prod(shape)):
        x = x.reshape(len(x), *shape)
    if x.shape[1:] != shape or len(x) == 0:
        raise ValueError(
            f"{path}: observations of shape {x.shape} do not match task {task.name!r}, whose x has shape "
            f"{shape} (one observation) or (n, {', '.join(map(str, shape))})"
        )
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: observation(s) {np.flatnonzero(bad).tolist()} hold NaN or infinite values")
    return x.astype(np.float32)


def _probabilities(levels: Sequence[float]) -> np.ndarray:
    """The median, the :data:`WINDOW_QUANTILES`, then each level's interval ends."""
    return np.array([0.5, *WINDOW_QUANTILES] + [p for a in levels for p in ((1 - a) / 2, (1 + a) / 2)])


def _summary(draws: np.ndarray, quantiles: np.ndarray, levels: Sequence[float], sampler: str) -> Posterior:
    """The :class:`Posterior` of draws (n, S, D) and marginal quantiles (n, D, P) at :func:`_probabilities`."""
    window = len(WINDOW_QUANTILES)
    intervals = quantiles[..., 1 + window :].reshape(*quantiles.shape[:-1], len(levels), 2)
    return Posterior(draws, intervals, quantiles[..., 0], sampler, quantiles[..., 1 : 1 + window])


def _draw_quantiles(draws: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Marginal quantiles (n, D, P) of draws (n, S, D)."""
    return np.moveaxis(np.quantile(draws, probabilities, axis=1), 0, -1)


def grid_rows(device: str | torch.device) -> int:
    """Grid rows (cells × observations) evaluated at once on ``device``."""
    return GRID_BATCH_CUDA if torch.device(device).type == "cuda" else GRID_BATCH


def ensemble_log_posterior(members: Sequence[ConditionalEstimator], x: Tensor, task: Task) -> LogDensity:
    r"""The ensemble's (or single member's) unnormalised log posterior
    :math:`\log p(\theta) + \log \hat r_{ens}(\theta, x)` of observations ``x`` (n, ...),
    ``(theta, rows) -> (1, n, G)``, ``theta`` in float32."""
    log_density = log_posterior_on(Ensemble(members, x), task)

    def ensemble(theta: Tensor, rows: slice) -> Tensor:
        return log_density(theta, rows)[-1:]

    return ensemble


def _grid_posterior(
    log_density: LogDensity,
    task: Task,
    n: int,
    samples: int,
    spec: GridSpec,
    generator: torch.Generator,
    probabilities: np.ndarray,
    device: str,
    dtype: torch.dtype,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact draws (n, S, D) and marginal quantiles (n, D, P) of the piecewise-constant
    posterior of ``log_density`` (one row) on ``spec``'s partition of each observation."""
    draws, quantiles = [], []
    for batch in posterior_pass(log_density, n, task.lower, task.upper, spec, grid_rows(device), device=device, dtype=dtype):
        mass = batch.log_masses().exp()
        draws.append(sample(mass, batch.partition, samples, generator)[0])
        quantiles.append(marginal_quantiles(mass, batch.partition, probabilities)[0])
    return torch.cat(draws).cpu().numpy(), torch.cat(quantiles).cpu().numpy()


def _mcmc_draws(log_density: LogDensity, task: Task, n: int, samples: int, generator: torch.Generator, device: str) -> np.ndarray:
    """Draws (n, S, D) of :data:`CHAINS` Metropolis chains per observation of ``log_density`` (one row)."""
    lower = torch.as_tensor(task.lower, dtype=torch.float32, device=device)
    upper = torch.as_tensor(task.upper, dtype=torch.float32, device=device)
    per_chain = -(-samples // CHAINS)
    draws = []
    for i in range(n):
        rows = slice(i, i + 1)

        def log_p(theta: Tensor, rows: slice = rows) -> Tensor:
            return log_density(theta, rows)[-1]

        chains = metropolis(log_p, lower, upper, (1, CHAINS), per_chain, generator=generator)
        draws.append(chains[:, :samples].double())
    return torch.cat(draws).cpu().numpy()


def _posterior_of(
    log_density: LogDensity,
    task: Task,
    n: int,
    samples: int,
    spec: GridSpec,
    seed: int,
    device: str,
    levels: Sequence[float],
    max_grid_dim: int,
    dtype: torch.dtype,
) -> Posterior:
    """The :class:`Posterior` of ``log_density`` (one row, ``theta`` in ``dtype``): on
    ``spec``'s grid up to ``max_grid_dim`` parameters, by MCMC beyond."""
    generator = torch.Generator(device=device).manual_seed(seed)
    probabilities = _probabilities(levels)
    if task.theta_dim <= max_grid_dim:
        draws, quantiles = _grid_posterior(log_density, task, n, samples, spec, generator, probabilities, device, dtype)
        return _summary(draws, quantiles, levels, "grid")
    draws = _mcmc_draws(log_density, task, n, samples, generator, device)
    return _summary(draws, _draw_quantiles(draws, probabilities), levels, "mcmc")


@torch.no_grad()
def posterior(
    task: Task,
    members: Sequence[ConditionalEstimator],
    x: np.ndarray,
    samples: int,
    bins: int = 90,
    seed: int = 0,
    device: str = "cpu",
    levels: Sequence[float] = LEVELS,
    max_grid_dim: int = MAX_GRID_DIM,
    grid_spec: GridSpec | None = None,
) -> Posterior:
    """The ensemble's posterior of each observation in ``x`` (n, *x_shape) (:class:`Posterior`),
    on the grid ``grid_spec`` (:mod:`bnre.evaluation.grids`; by default the uniform grid of ``bins``)."""
    x_t = torch.as_tensor(x, device=device)
    spec = grid_spec or UniformGrid(bins)
    if all(isinstance(m, PosteriorEstimator) for m in members):
        generator = torch.Generator(device=device).manual_seed(seed)
        draws = flow_draws(Ensemble(members, x_t), samples, generator).cpu().numpy()
        return _summary(draws, _draw_quantiles(draws, _probabilities(levels)), levels, "flow")
    log_density = ensemble_log_posterior(members, x_t, task)
    return _posterior_of(log_density, task, len(x_t), samples, spec, seed, device, levels, max_grid_dim, torch.float32)


@torch.no_grad()
def exact_posterior(
    task: Task,
    x: np.ndarray,
    samples: int,
    grid_spec: GridSpec,
    seed: int = 0,
    device: str = "cpu",
    levels: Sequence[float] = LEVELS,
    max_grid_dim: int = MAX_GRID_DIM,
) -> Posterior:
    r"""The exact posterior :math:`p(\theta \mid x) \propto p(\theta) p(x \mid \theta)` of a
    tractable task for each observation in ``x``, drawn as :func:`posterior` draws an ensemble's."""
    if not task.tractable:
        raise ValueError(f"{task.name}: the likelihood is not tractable, there is no exact posterior")
    log_density = exact_log_posterior(task, torch.as_tensor(x, device=device))
    return _posterior_of(log_density, task, len(x), samples, grid_spec, seed, device, levels, max_grid_dim, torch.float64)


def plot_window(
    spans: Sequence[np.ndarray], lower: np.ndarray, upper: np.ndarray, pad: float = WINDOW_PAD
) -> tuple[np.ndarray, np.ndarray]:
    r"""The window of a figure: per parameter, with :math:`[a, b]` the union of the spans
    (each (D, 2), e.g. :attr:`Posterior.span`), :math:`[a - p, b + p] \cap [l, u]` with
    :math:`p` = ``pad`` :math:`(b - a)` (at least :math:`10^{-9}` of the box's side)."""
    spans = np.stack([np.asarray(s, np.float64) for s in spans])  # (M, D, 2)
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    low, high = spans[..., 0].min(axis=0), spans[..., 1].max(axis=0)
    margin = pad * np.maximum(high - low, 1e-9 * (upper - lower))
    return np.maximum(low - margin, lower), np.minimum(high + margin, upper)


def _joint(estimators: Sequence[LogDensity], exact: LogDensity | None) -> LogDensity:
    """The rows of every estimator (evaluated in float32), then the exact posterior's
    (in float64), at the same ``theta``."""

    def log_density(theta: Tensor, rows: slice) -> Tensor:
        values = [f(theta.float(), rows).double() for f in estimators]
        if exact is not None:
            values.append(exact(theta.double(), rows).double())
        return torch.cat(values)

    return log_density


def raster(
    log_density: LogDensity,
    log_z: Tensor,
    lower: np.ndarray,
    upper: np.ndarray,
    shown: int,
    points: int = RASTER_POINTS,
    device: str = "cpu",
) -> np.ndarray:
    r"""The normalised marginal density (E, points, …) of the first ``shown`` parameters of
    one observation's posteriors, at the centres of a regular raster over the window
    :math:`[l, u]`.

    With :math:`l_e` row :math:`e` of ``log_density`` and :math:`\log Z_e` = ``log_z``
    (E,) its normaliser over the prior box (:func:`bnre.evaluation.partition.log_normaliser`), the
    marginal of the shown parameters :math:`\theta_S` is, by the midpoint rule over a
    regular raster :math:`T` of the window of the other parameters (:math:`q` points each,
    :data:`MARGINAL_POINTS` or as many as :data:`RASTER_EVALUATIONS` allow; none when
    ``shown = D``),

    .. math:: \hat p_e(\theta_S) = \sum_{t \in T} e^{l_e(\theta_S, t) - \log Z_e}\, \Delta V_T,

    the window's mass only: what lies outside (at most 0.2% per parameter of the
    :func:`plot_window` of these posteriors) is left out.
    """
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    dim = len(lower)
    hidden = dim - shown
    q = max(2, min(MARGINAL_POINTS, int((RASTER_EVALUATIONS / points**shown) ** (1 / hidden)))) if hidden else 1
    counts = [points] * shown + [q] * hidden
    axes = [lo + (np.arange(k) + 0.5) * (hi - lo) / k for lo, hi, k in zip(lower, upper, counts)]
    theta = torch.cartesian_prod(*[torch.as_tensor(a, device=device) for a in axes]).reshape(1, -1, dim)
    step = 2**16  # raster points per call
    values = torch.cat(
        [log_density(theta[:, a : a + step], slice(0, 1)) for a in range(0, theta.shape[1], step)], dim=-1
    )[:, 0]  # (E, G)
    log_p = (values - log_z.to(values.device)[:, None]).reshape(len(values), *counts)
    log_cell = float(sum(np.log((hi - lo) / k) for lo, hi, k in zip(lower[shown:], upper[shown:], counts[shown:])))
    marginal = torch.logsumexp(log_p, dim=tuple(range(1 + shown, 1 + dim))) + log_cell if hidden else log_p
    return marginal.exp().cpu().numpy()


class PosteriorView(NamedTuple):
    """One observation's posteriors in a figure's window ``lower``, ``upper`` (D,): per
    method, the normalised marginal density (``points``,) * k of the first k = min(D, 2)
    parameters at the centres of a regular raster over the window (:func:`raster`)."""

    lower: np.ndarray
    upper: np.ndarray
    densities: dict[str, np.ndarray]


@torch.no_grad()
def posterior_view(
    task: Task,
    estimators: dict[str, LogDensity],
    x: Tensor,
    spec: GridSpec,
    theta_true: np.ndarray | None = None,
    points: int = RASTER_POINTS,
    device: str = "cpu",
) -> PosteriorView:
    r"""The posterior of observation ``x`` (1, ...) of each method in ``estimators``
    (``(theta, rows) -> (1, 1, G)``, float32, e.g. :func:`ensemble_log_posterior`) and,
    for a tractable task, the exact one (``exact``), zoomed to where their mass is.

    All are refined together on ``spec``'s partition of the box (a cell is refined where
    any of them calls for it), which gives each its normaliser :math:`\log Z` and its
    marginal :data:`WINDOW_QUANTILES`; the window (:func:`plot_window`) spans those of
    every method and ``theta_true`` where given; the densities are then evaluated on the
    window's raster (:func:`raster`), not read from the cells.
    """
    names = list(estimators)
    exact = exact_log_posterior(task, x.to(device)) if task.tractable else None
    if exact is not None:
        names.append("exact")
    joint = _joint(list(estimators.values()), exact)
    (batch,) = list(posterior_pass(joint, 1, task.lower, task.upper, spec, grid_rows(device), device=device, dtype=torch.float64))
    mass = batch.log_masses().exp()
    spans = list(marginal_quantiles(mass, batch.partition, np.asarray(WINDOW_QUANTILES))[:, 0].cpu().numpy())
    if theta_true is not None:
        truth = np.asarray(theta_true, np.float64)
        spans.append(np.stack([truth, truth], axis=-1))
    lower, upper = plot_window(spans, task.lower, task.upper)
    log_z = batch.log_normaliser()[:, 0]
    densities = raster(joint, log_z, lower, upper, min(task.theta_dim, 2), points, device)
    return PosteriorView(lower, upper, dict(zip(names, densities)))


def flow_draws(ensemble: Ensemble, samples: int, generator: torch.Generator) -> Tensor:
    """Draws (n, S, D), float64, of the mixture of the members' flows for each observation
    of ``ensemble``, restricted to the prior box (:meth:`~bnre.nets.flows.PosteriorEstimator.sample`)."""
    k, n = len(ensemble.members), ensemble.embeddings.shape[1]
    out = []
    for i in range(n):
        picks = torch.randint(0, k, (samples,), generator=generator, device=generator.device)
        draws = torch.empty(samples, ensemble.members[0].prior.dim, dtype=torch.float64, device=generator.device)
        for j, member in enumerate(ensemble.members):
            where = picks == j
            if where.any():
                draws[where] = member.sample(ensemble.embeddings[j, i], int(where.sum()), generator).double()
        out.append(draws)
    return torch.stack(out)


def sample_table(task: Task, posterior: Posterior, names: Sequence[str]) -> pd.DataFrame:
    """Tidy draws: observation, draw, one column per parameter label."""
    n, s, _ = posterior.samples.shape
    table = pd.DataFrame(posterior.samples.reshape(n * s, -1), columns=list(task.labels))
    table.insert(0, "draw", np.tile(np.arange(s), n))
    table.insert(0, "observation", np.repeat(np.asarray(names, dtype=object), s))
    return table


def interval_table(task: Task, posterior: Posterior, names: Sequence[str], levels: Sequence[float] = LEVELS) -> pd.DataFrame:
    """Tidy marginal intervals: observation, parameter, level, lower, upper, median, sampler."""
    rows = [
        dict(observation=name, parameter=label, level=level, lower=posterior.intervals[i, d, j, 0],
             upper=posterior.intervals[i, d, j, 1], median=posterior.medians[i, d], sampler=posterior.sampler)
        for i, name in enumerate(names)
        for d, label in enumerate(task.labels)
        for j, level in enumerate(levels)
    ]
    return pd.DataFrame(rows)


def observation_names(path: str | os.PathLike, n: int) -> list[str]:
    """``stem`` for a file of one observation, ``stem_0``, ``stem_1``, … for several."""
    stem = Path(path).stem
    return [stem] if n == 1 else [f"{stem}_{i}" for i in range(n)]
