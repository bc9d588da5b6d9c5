r"""Expected coverage by grid integration.

For an observation :math:`x^*` with true parameter :math:`\theta^*`, the posterior
density :math:`\hat p(\theta \mid x^*)` is evaluated at the centres :math:`\theta_c` of a
regular grid over the prior box and normalised into cell masses
:math:`m_c \propto \hat p(\theta_c \mid x^*)`. The *rank* of :math:`\theta^*` is the mass
of the cells strictly denser than it,

.. math:: r = \sum_c m_c \, \mathbb{1}[\hat p(\theta_c \mid x^*) > \hat p(\theta^* \mid x^*)] .

The highest-density region at credibility :math:`\gamma` (the densest cells whose mass
reaches :math:`\gamma`) contains :math:`\theta^*` if and only if :math:`r < \gamma`, so the
expected coverage is :math:`C(\gamma) = \mathbb{P}(r < \gamma)`. A calibrated posterior
has :math:`C(\gamma) = \gamma`, an overconfident one lies below the diagonal and a
conservative one above. The coverage AUC is the signed area
:math:`\int_0^1 (C(\gamma) - \gamma)\, d\gamma = \tfrac12 - \mathbb{E}[r]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from scipy.stats import beta
from torch import Tensor

from .precision import MixedPrecisionGrid

#: The 19 credibility levels of the paper.
PAPER_LEVELS = np.round(np.arange(1, 20) * 0.05, 2)


def grid(lower: np.ndarray, upper: np.ndarray, bins: int) -> tuple[Tensor, float]:
    """Cell centres (bins^D, D) of a regular grid over the box, and the log cell volume."""
    from .partition import regular_partition

    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    partition = regular_partition(lower, upper, bins)
    return partition.centre[0].float(), float(partition.log_volume[0, 0])


def cell_mass(log_density_grid: Tensor) -> Tensor:
    r"""Normalised cell masses :math:`m_c \propto \exp \log \hat p(\theta_c \mid x)`, (..., G), float64."""
    return torch.softmax(log_density_grid.double(), dim=-1)


def ranks(log_density_grid: Tensor, log_density_true: Tensor, mass: Tensor | None = None) -> Tensor:
    """Posterior mass of the cells strictly denser than the truth, per row.

    ``log_density_grid`` is (..., N, G), unnormalised; ``log_density_true`` is (..., N);
    ``mass`` optionally gives :func:`cell_mass` of the grid, if already computed.
    """
    if mass is None:
        mass = cell_mass(log_density_grid)
    denser = log_density_grid > log_density_true[..., None]
    return (mass * denser).sum(dim=-1)


#: Grid rows (cells × observations) evaluated at once: small enough for the activations
#: to stay in cache (2^13 rows of 256 floats = 8 MiB); larger batches are slower on CPU.
GRID_BATCH = 2**13

#: On a GPU, larger batches keep the device busy.
GRID_BATCH_CUDA = 2**20


def grid_batches(n: int, cells: int, rows: int = GRID_BATCH) -> Iterator[slice]:
    """Slices of ``n`` observations such that each batch evaluates about ``rows`` grid rows."""
    step = max(1, rows // cells)
    for a in range(0, n, step):
        yield slice(a, min(a + step, n))


@dataclass
class GridBatch:
    r"""The grid posterior of a batch of observations ``rows``.

    ``log_density`` (..., n, G) is the unnormalised log posterior at the cell centres and
    ``mass`` (..., n, G, float64) the normalised cell masses; leading dimensions (e.g. one
    per estimator) are those of the log density.
    """

    rows: slice
    log_density: Tensor
    mass: Tensor


def grid_pass(
    log_density: Callable[[Tensor, slice], Tensor],
    n: int,
    cells: Tensor,
    rows: int = GRID_BATCH,
    log_true: Tensor | None = None,
) -> Iterator[GridBatch]:
    """The one batched pass over the grid that coverage and every grid diagnostic use.

    ``log_density(theta, rows)`` returns the unnormalised log posterior of observations
    ``rows`` at ``theta`` of shape (1, G, D), as (..., n, G). Batches hold about ``rows``
    grid rows (cells × observations). A :class:`~bnre.evaluation.precision.MixedPrecisionGrid` given
    ``log_true`` (..., N), its float32 value at the true parameters, computes the grid in
    bf16 and refines it where a rank can change.
    """
    mixed = isinstance(log_density, MixedPrecisionGrid) and log_true is not None
    for batch in grid_batches(n, len(cells), rows):
        log_grid = log_density.grid(cells, batch, log_true[..., batch]) if mixed else log_density(cells[None], batch)
        yield GridBatch(batch, log_grid, cell_mass(log_grid))


def grid_ranks(
    log_density: Callable[[Tensor, slice], Tensor],
    theta_true: Tensor,
    cells: Tensor,
    rows: int = GRID_BATCH,
) -> tuple[Tensor, Tensor]:
    """Ranks of ``theta_true`` (N, D) and the log normaliser on the grid.

    ``log_density`` is as in :func:`grid_pass`, also called at ``theta_true`` of shape
    (N, 1, D). Returns ``ranks`` (..., N) and ``log_z`` (..., N) with
    :math:`\\log Z = \\log \\sum_c \\hat p(\\theta_c \\mid x)` (cell volume not included).
    """
    all_ranks, all_log_z = [], []
    log_true = log_density(theta_true[:, None], slice(0, len(theta_true)))[..., 0]
    for batch in grid_pass(log_density, len(theta_true), cells, rows, log_true):
        all_ranks.append(ranks(batch.log_density, log_true[..., batch.rows], batch.mass))
        all_log_z.append(torch.logsumexp(batch.log_density.double(), dim=-1))
    return torch.cat(all_ranks, dim=-1), torch.cat(all_log_z, dim=-1)


def coverage_curve(ranks: np.ndarray | Tensor, levels: np.ndarray) -> np.ndarray:
    r"""Empirical expected coverage :math:`\hat C(\gamma) = \frac1N \sum_i \mathbb{1}[r_i < \gamma]`."""
    r = np.asarray(ranks, dtype=np.float64)
    return (r[None, :] < np.asarray(levels)[:, None]).mean(axis=1)


def coverage_auc(ranks: np.ndarray | Tensor) -> float:
    r"""Signed area between the coverage curve and the diagonal, :math:`\tfrac12 - \bar r`.

    Positive means conservative, negative overconfident.
    """
    return float(0.5 - np.mean(np.asarray(ranks, dtype=np.float64)))


def clopper_pearson(successes: np.ndarray, n: int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) binomial confidence interval of a proportion."""
    k = np.asarray(successes, dtype=np.float64)
    a = (1 - confidence) / 2
    lower = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
    upper = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lower, upper


def hdr_sizes(mass: Tensor, levels: np.ndarray) -> Tensor:
    r"""Fraction of the grid in the highest-density region at each credibility level.

    The region at level :math:`\gamma` is the smallest set of densest cells whose mass
    reaches :math:`\gamma` (empty at :math:`\gamma = 0`). ``mass`` is :func:`cell_mass`,
    (N, G); returns (N, L).
    """
    cumulative = torch.sort(mass, dim=-1, descending=True).values.cumsum(dim=-1)
    target = torch.as_tensor(np.asarray(levels), dtype=torch.float64, device=mass.device)
    target = target.expand(len(mass), -1).contiguous()
    # cells needed: first index whose cumulative mass reaches the level, plus one
    count = torch.searchsorted(cumulative, target - 1e-12, right=False) + 1
    count = torch.where(target > 0, count.clamp_max(mass.shape[-1]), torch.zeros_like(count))
    return count.double() / mass.shape[-1]


def grid_moments(mass: Tensor, cells: Tensor) -> tuple[Tensor, Tensor]:
    r"""Posterior mean and variance per dimension from :func:`cell_mass` (N, G), each (N, D)."""
    cells = cells.double()
    mean = mass @ cells
    variance = mass @ cells**2 - mean**2
    return mean, variance.clamp_min(0)


def grid_bins(bins: int, dim: int, max_cells: int) -> int:
    """Bins per dimension: ``bins``, reduced so that ``bins ** dim <= max_cells``."""
    capped = bins
    while capped > 2 and capped**dim > max_cells:
        capped -= 1
    return capped
