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

from typing import Callable

import numpy as np
import torch
from scipy.stats import beta
from torch import Tensor

#: The 19 credibility levels of the paper.
PAPER_LEVELS = np.round(np.arange(1, 20) * 0.05, 2)


def grid(lower: np.ndarray, upper: np.ndarray, bins: int) -> tuple[Tensor, float]:
    """Cell centres (bins^D, D) of a regular grid over the box, and the log cell volume."""
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    width = (upper - lower) / bins
    axes = [torch.as_tensor(lo + (np.arange(bins) + 0.5) * w, dtype=torch.float32) for lo, w in zip(lower, width)]
    cells = torch.cartesian_prod(*axes).reshape(-1, len(axes))
    return cells, float(np.log(width).sum())


def cell_mass(log_density_grid: Tensor) -> Tensor:
    r"""Normalised cell masses :math:`m_c \propto \exp \log \hat p(\theta_c \mid x)`, (N, G), float64."""
    return torch.softmax(log_density_grid.double(), dim=-1)


def ranks(log_density_grid: Tensor, log_density_true: Tensor, mass: Tensor | None = None) -> Tensor:
    """Posterior mass of the cells strictly denser than the truth, per row.

    ``log_density_grid`` is (N, G), unnormalised; ``log_density_true`` is (N,);
    ``mass`` optionally gives :func:`cell_mass` of the grid, if already computed.
    """
    if mass is None:
        mass = cell_mass(log_density_grid)
    denser = log_density_grid > log_density_true[:, None]
    return (mass * denser).sum(dim=-1)


def grid_ranks(
    log_density: Callable[[Tensor, slice], Tensor],
    theta_true: Tensor,
    cells: Tensor,
    batch: int = 64,
) -> tuple[Tensor, Tensor]:
    """Ranks of ``theta_true`` (N, D) and the log normaliser on the grid.

    ``log_density(theta, rows)`` returns the unnormalised log posterior of the
    observations ``rows`` at ``theta`` of shape (n, G, D) or (n, 1, D), as (n, G).
    Returns ``ranks`` (N,) and ``log_z`` (N,) with
    :math:`\\log Z = \\log \\sum_c \\hat p(\\theta_c \\mid x)` (cell volume not included).
    """
    all_ranks, all_log_z = [], []
    for a in range(0, len(theta_true), batch):
        rows = slice(a, min(a + batch, len(theta_true)))
        log_grid = log_density(cells[None], rows)
        log_true = log_density(theta_true[rows][:, None], rows)[:, 0]
        all_ranks.append(ranks(log_grid, log_true))
        all_log_z.append(torch.logsumexp(log_grid.double(), dim=-1))
    return torch.cat(all_ranks), torch.cat(all_log_z)


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
