r"""Posteriors of observed data: samples and marginal credible intervals.

For an observation :math:`x_o` and a trained ensemble,
:math:`\hat p(\theta \mid x_o) \propto p(\theta)\, \hat r_{ens}(\theta, x_o)`:

* up to :data:`MAX_GRID_DIM` parameters the posterior is the piecewise-constant density
  of the evaluation grid (:mod:`bnre.coverage`): draws from it are exact
  (:func:`bnre.calibration.sample_grid`) and so are its central credible intervals, read
  from each marginal's CDF, linear within a cell;
* beyond, draws come from random-walk Metropolis chains (:mod:`bnre.mcmc`) and the
  intervals are their quantiles;
* a posterior estimator (NPE, BNPE: :mod:`bnre.flows`) samples natively, whatever the
  dimension: the ensemble's density is the mixture of its members', so each draw picks a
  member uniformly and is drawn from its flow, rejected outside the prior box; the
  intervals are the draws' quantiles.

The central interval of level :math:`\alpha` of parameter :math:`\theta_d` is
:math:`[F_d^{-1}(\tfrac{1 - \alpha}{2}), F_d^{-1}(\tfrac{1 + \alpha}{2})]`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .calibration import marginal_masses, sample_grid
from .coverage import grid, grid_pass
from .ensemble import Ensemble
from .evaluate import log_posterior_on
from .flows import PosteriorEstimator
from .mcmc import metropolis
from .nn import ConditionalEstimator
from .tasks import Task

#: Up to this many parameters the posterior is the grid's; beyond, MCMC's.
MAX_GRID_DIM = 3

#: Levels of the marginal credible intervals.
LEVELS = (0.5, 0.9, 0.95)

#: Metropolis chains per observation.
CHAINS = 16


class Posterior(NamedTuple):
    """Draws (n, S, D) of the posteriors of n observations, and their marginal central
    intervals (n, D, L, 2) and medians (n, D) at :data:`LEVELS`; ``sampler`` is
    ``grid``, ``mcmc`` or ``flow``."""

    samples: np.ndarray
    intervals: np.ndarray
    medians: np.ndarray
    sampler: str


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


def _grid_quantiles(marginal: Tensor, lower: float, upper: float, probabilities: np.ndarray) -> np.ndarray:
    """Quantiles of piecewise-constant 1-D densities with masses ``marginal`` (n, bins)."""
    mass = marginal.double().cpu().numpy()
    edges = np.linspace(lower, upper, mass.shape[-1] + 1)
    out = np.empty((len(mass), len(probabilities)))
    for i, m in enumerate(mass):
        cdf = np.concatenate([[0.0], np.cumsum(m) / m.sum()])
        # the CDF is linear within a cell; flat stretches (empty cells) take their left end
        out[i] = np.interp(probabilities, cdf, edges)
    return out


def _probabilities(levels: Sequence[float]) -> np.ndarray:
    return np.array([0.5] + [p for a in levels for p in ((1 - a) / 2, (1 + a) / 2)])


def _split(quantiles: np.ndarray, levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(…, 1 + 2L) quantiles -> medians (…) and intervals (…, L, 2)."""
    return quantiles[..., 0], quantiles[..., 1:].reshape(*quantiles.shape[:-1], len(levels), 2)


@torch.no_grad()
def posterior(
    task: Task,
    members: Sequence[ConditionalEstimator],
    x: np.ndarray,
    samples: int,
    bins: int,
    seed: int = 0,
    device: str = "cpu",
    levels: Sequence[float] = LEVELS,
    max_grid_dim: int = MAX_GRID_DIM,
) -> Posterior:
    """The ensemble's posterior of each observation in ``x`` (n, *x_shape) (:class:`Posterior`)."""
    x_t = torch.as_tensor(x, device=device)
    ensemble = Ensemble(members, x_t)
    log_density = log_posterior_on(ensemble, task)
    generator = torch.Generator(device=device).manual_seed(seed)
    probabilities = _probabilities(levels)
    if all(isinstance(m, PosteriorEstimator) for m in ensemble.members):
        draws = flow_draws(ensemble, samples, generator).cpu().numpy()
        medians, intervals = _split(np.moveaxis(np.quantile(draws, probabilities, axis=1), 0, -1), levels)
        return Posterior(draws, intervals, medians, "flow")
    if task.theta_dim <= max_grid_dim:
        cells, _ = grid(task.lower, task.upper, bins)
        cells = cells.to(device)
        draws, quantiles = [], []
        for batch in grid_pass(log_density, len(x_t), cells, ensemble.rows):
            mass = batch.mass[-1]  # the ensemble (or the single member)
            draws.append(sample_grid(mass, cells, task.lower, task.upper, bins, samples, generator))
            marginals = marginal_masses(mass, bins, task.theta_dim)
            quantiles.append(np.stack(
                [_grid_quantiles(m, task.lower[d], task.upper[d], probabilities) for d, m in enumerate(marginals)], axis=1
            ))
        medians, intervals = _split(np.concatenate(quantiles), levels)
        return Posterior(torch.cat(draws).cpu().numpy(), intervals, medians, "grid")
    lower = torch.as_tensor(task.lower, dtype=torch.float32, device=device)
    upper = torch.as_tensor(task.upper, dtype=torch.float32, device=device)
    per_chain = -(-samples // CHAINS)
    draws = []
    for i in range(len(x_t)):
        rows = slice(i, i + 1)

        def log_p(theta: Tensor, rows: slice = rows) -> Tensor:
            return log_density(theta, rows)[-1]

        chains = metropolis(log_p, lower, upper, (1, CHAINS), per_chain, generator=generator)
        draws.append(chains[:, :samples].double())
    draws = torch.cat(draws).cpu().numpy()
    medians, intervals = _split(np.moveaxis(np.quantile(draws, probabilities, axis=1), 0, -1), levels)
    return Posterior(draws, intervals, medians, "mcmc")


def flow_draws(ensemble: Ensemble, samples: int, generator: torch.Generator) -> Tensor:
    """Draws (n, S, D), float64, of the mixture of the members' flows for each observation
    of ``ensemble``, restricted to the prior box (:meth:`~bnre.flows.PosteriorEstimator.sample`)."""
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
