r"""Mixed-precision grid evaluation: the grid in bfloat16, float32 wherever a rank can move.

The unnormalised log density :math:`\tilde l_c` of every cell is computed with each
head's hidden layers in bfloat16 (:class:`~bnre.evaluation.low_precision_head.LowPrecisionHead`; the first layer, which
resolves the parameter, and the last, which gives the logit, stay in float32). If
:math:`|\tilde l_c - l_c| \le \delta` for every cell, the rank of :math:`\theta^*`,

.. math:: r = \frac{A}{A + B}, \quad A = \sum_{c:\, l_c > l^*} e^{l_c}, \quad
    B = \sum_{c:\, l_c \le l^*} e^{l_c},

with :math:`l^*` computed in float32, can move only in two ways, and both are refined by
recomputing cells in float32:

* a cell with :math:`|\tilde l_c - l^*| \le \delta` may lie on either side of the truth:
  every such cell is refined;
* the masses of the cells left in bfloat16, :math:`A_U` and :math:`B_U`, are each off by a
  factor within :math:`[e^{-\delta}, e^{\delta}]`, so the rank lies within

  .. math:: r_\pm = \frac{A_R + A_U e^{\pm\delta}}{A_R + A_U e^{\pm\delta} + B_R + B_U e^{\mp\delta}}

  (:math:`A_R`, :math:`B_R` the refined cells' masses): the densest cells are refined
  until :math:`\max(r_+ - \hat r, \hat r - r_-)` is at most ``tolerance``.

The normaliser, hence the log posterior, has its own bound, :math:`|\log \hat Z - \log Z|
\le -\log(1 - u(1 - e^{-\delta}))` with :math:`u = (A_U + B_U)/Z` the unrefined mass: the
densest cells are refined until both bounds hold (``log_z_tolerance``, nats). Other
diagnostics of the masses (HDR sizes, moments, SBC, TARP) move by at most :math:`u\delta`
too. An ensemble row is
refined where any member or the ensemble needs it. :math:`\delta` is checked at run time:
``check_cells`` random cells of every batch are also computed in float32, and a batch whose
largest error there exceeds :math:`\delta / 2` is computed in float32 whole (a fallback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

#: The precisions of grid evaluation: ``auto`` takes bf16 where the hardware has it.
PRECISIONS = ("auto", "float32", "bf16")


def bf16_capable(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively: AVX-512 BF16 or AMX on a
    CPU, a tensor-core GPU (compute capability 8.0 or more) on CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


@dataclass(frozen=True)
class GridPrecision:
    r"""How the grid is evaluated: ``mode`` in :data:`PRECISIONS`; in bf16, ``delta`` bounds
    :math:`|\tilde l - l|` (nats), ``tolerance`` the rank error of each row, and
    ``check_cells`` cells per batch verify ``delta``; ``log_z_tolerance`` bounds the
    log normaliser's error (nats)."""

    mode: str = "float32"
    delta: float = 0.1
    tolerance: float = 1e-4
    check_cells: int = 64
    log_z_tolerance: float = 1e-3

    def __post_init__(self):
        if self.mode not in PRECISIONS:
            raise ValueError(f"unknown grid precision {self.mode!r}; expected one of {', '.join(PRECISIONS)}")
        if not self.delta > 0:
            raise ValueError(f"precision_delta must be > 0, got {self.delta}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"precision_tolerance must be in (0, 1), got {self.tolerance}")
        if not self.log_z_tolerance > 0:
            raise ValueError(f"precision log_z_tolerance must be > 0, got {self.log_z_tolerance}")
        if self.check_cells < 1:
            raise ValueError(f"precision check_cells must be >= 1, got {self.check_cells}")

    def uses_bf16(self, device: torch.device | str) -> bool:
        """``bf16`` always (emulated where the hardware lacks it: slow), ``auto`` where capable."""
        return self.mode == "bf16" or (self.mode == "auto" and bf16_capable(device))


@dataclass
class RefinementCounts:
    """What the bf16 path did: batches, fallbacks, cells evaluated and refined, and the
    largest error measured on the check cells."""

    batches: int = 0
    fallbacks: int = 0
    cells: int = 0
    refined: int = 0
    max_error: float = 0.0

    @property
    def refined_fraction(self) -> float:
        """Fraction of grid cells computed in float32 (refined, checked, or in a fallback)."""
        return self.refined / self.cells if self.cells else 0.0

    def metrics(self) -> dict[str, float]:
        return {
            "grid_bf16": 1.0,
            "grid_refined_fraction": self.refined_fraction,
            "grid_fallback_fraction": self.fallbacks / self.batches if self.batches else 0.0,
            "grid_bf16_max_error": self.max_error,
        }


def rank_bound(log_grid: Tensor, log_true: Tensor, refined: Tensor, delta: float) -> Tensor:
    r"""The bound :math:`\max(r_+ - \hat r, \hat r - r_-)` on the rank error of each row
    (..., n) when the cells outside ``refined`` (..., n, G) are off by at most ``delta``."""
    w = torch.softmax(log_grid.double(), dim=-1)
    denser = log_grid > log_true[..., None]
    a_u = (w * (denser & ~refined)).sum(-1)
    b_u = (w * (~denser & ~refined)).sum(-1)
    a_r = (w * (denser & refined)).sum(-1)
    b_r = (w * (~denser & refined)).sum(-1)
    return _bound(a_r, b_r, a_u, b_u, delta)


def _bound(a_r: Tensor, b_r: Tensor, a_u: Tensor, b_u: Tensor, delta: float) -> Tensor:
    up, down = math.exp(delta), math.exp(-delta)
    r = (a_r + a_u) / (a_r + a_u + b_r + b_u)
    high = (a_r + a_u * up) / (a_r + a_u * up + b_r + b_u * down)
    low = (a_r + a_u * down) / (a_r + a_u * down + b_r + b_u * up)
    return torch.maximum(high - r, r - low)


def log_z_bound(unrefined_mass: Tensor, delta: float) -> Tensor:
    r"""Bound on :math:`|\log \hat Z - \log Z|` when a fraction ``unrefined_mass`` of the
    mass is off by a factor within :math:`[e^{-\delta}, e^{\delta}]`."""
    return -torch.log1p(-unrefined_mass.clamp(0, 1) * -math.expm1(-delta))


def cells_to_refine(
    log_grid: Tensor, log_true: Tensor, delta: float, tolerance: float, log_z_tolerance: float = math.inf
) -> Tensor:
    r"""Cells (n, G) to recompute in float32, from bf16 log densities ``log_grid`` (E, n, G)
    and float32 ``log_true`` (E, n): in every row, the cells within ``delta`` of the truth,
    and the densest others until the :func:`rank_bound` of the row is at most ``tolerance``
    and its :func:`log_z_bound` at most ``log_z_tolerance``; united over the E rows."""
    uncertain = (log_grid - log_true[..., None]).abs() <= delta
    w = torch.softmax(log_grid.double(), dim=-1)
    denser = log_grid > log_true[..., None]
    a_r = (w * (denser & uncertain)).sum(-1, keepdim=True)
    b_r = (w * (~denser & uncertain)).sum(-1, keepdim=True)
    # the other cells, densest first; refining the first k leaves the tail sums unrefined
    w_other = torch.where(uncertain, torch.zeros_like(w), w)
    order = torch.argsort(w_other, dim=-1, descending=True)
    w_sorted = torch.gather(w_other, -1, order)
    denser_sorted = torch.gather(denser, -1, order)
    a_sorted, b_sorted = w_sorted * denser_sorted, w_sorted * ~denser_sorted
    a_tail = a_sorted.flip(-1).cumsum(-1).flip(-1)  # [k]: unrefined mass when the first k are refined
    b_tail = b_sorted.flip(-1).cumsum(-1).flip(-1)
    a_head, b_head = a_sorted.sum(-1, keepdim=True) - a_tail, b_sorted.sum(-1, keepdim=True) - b_tail
    bound = _bound(a_r + a_head, b_r + b_head, a_tail, b_tail, delta)  # (E, n, G), index k
    loose = (bound > tolerance) | (log_z_bound(a_tail + b_tail, delta) > log_z_tolerance)
    g = log_grid.shape[-1]
    positions = torch.arange(1, g + 1, device=log_grid.device)
    k = torch.where(loose, positions, torch.zeros_like(positions)).amax(-1)  # (E, n)
    top = torch.zeros_like(uncertain)
    top.scatter_(-1, order, positions.expand_as(order) <= k[..., None])
    return (uncertain | top).any(dim=0)


@dataclass
class MixedPrecisionGrid:
    """A grid log density evaluated in bf16 and refined in float32 (module docstring).

    ``exact(theta, rows)`` and ``low(theta, rows)`` give the (E, n, G) log density of
    observations ``rows`` at ``theta`` (1, G, D) in float32 and in bf16;
    ``at(theta, obs)`` gives it in float32 at pairs of parameters (P, D) and observation
    indices (P,), as (E, P).
    """

    exact: Callable[[Tensor, slice], Tensor]
    low: Callable[[Tensor, slice], Tensor]
    at: Callable[[Tensor, Tensor], Tensor]
    precision: GridPrecision = field(default_factory=GridPrecision)
    seed: int = 0
    counts: RefinementCounts = field(default_factory=RefinementCounts)

    def __post_init__(self):
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, theta: Tensor, rows: slice) -> Tensor:
        """Float32, as any grid log density (the truth, marginal pairs)."""
        return self.exact(theta, rows)

    def grid(self, cells: Tensor, rows: slice, log_true: Tensor) -> Tensor:
        """The refined (E, n, G) log density on ``cells`` (G, D), given float32 ``log_true`` (E, n)."""
        p, counts = self.precision, self.counts
        n, g = rows.stop - rows.start, len(cells)
        counts.batches += 1
        counts.cells += n * g
        log_grid = self.low(cells[None], rows).float()
        check = torch.randperm(g, generator=self.generator)[: p.check_cells].to(cells.device)
        checked = self.exact(cells[check][None], rows)
        error = float((checked - log_grid[..., check]).abs().max())
        counts.max_error = max(counts.max_error, error)
        if not error <= p.delta / 2:  # NaN included
            counts.fallbacks += 1
            counts.refined += n * g
            return self.exact(cells[None], rows)
        log_grid[..., check] = checked
        mask = cells_to_refine(log_grid, log_true, p.delta, p.tolerance, p.log_z_tolerance)
        mask[:, check] = False
        obs, cell = mask.nonzero(as_tuple=True)
        if len(obs):
            log_grid[:, obs, cell] = self.at(cells[cell], obs + rows.start)
        counts.refined += len(obs) + n * len(check)
        return log_grid
