r"""An adaptive posterior grid: a coarse grid, then recursive splitting of the cells that matter.

The uniform grid cannot resolve a posterior narrower than its cells: :math:`\theta^*`
becomes denser than every cell centre, its rank is 0 and it counts as covered at every
level. Here each observation gets its own partition of the prior box
(:class:`~bnre.evaluation.partition.Partition`), a tree of boxes. It starts as a regular grid of
``coarse_bins`` per dimension; then, for :data:`ROUNDS` rounds, the ``k`` cells with the
largest *error score* of every observation are each split in three along one axis, until
the budget of ``cells`` density evaluations per observation is spent or every
observation's scores sum below ``tolerance``. The middle third keeps its parent's centre
and value, so a split costs two evaluations and adds two cells: every evaluation is a
leaf. A cell :math:`c` of volume :math:`V_c`, centre log density :math:`l_c`, densest
neighbour :math:`l_c^+` (the largest centre value of the cells next to it along each
axis) and log-density range :math:`s_{c,d}` across it along axis :math:`d` (:math:`s_c =
\sum_d s_{c,d}`) scores, with :math:`m_c = V_c e^{\max(l_c, l_c^+)} / Z` the mass it
could hold if its density rose to its densest neighbour's,

.. math:: e_c = m_c \times \begin{cases} 1 & |l_c - l^*| \le s_c
    \quad \text{(it may hold both sides of the level set } l = l^*) \\
    \min\!\left(1, \sum_d s_{c,d}^2 / 24 + \kappa_{c,d}\right) \times (1 - r \text{ if }
    l_c > l^* \text{ else } \max(r, \epsilon)) & \text{else} \end{cases}

The first case is where a cell's classification against :math:`\theta^*`'s density
:math:`l^*` is uncertain; in the second, :math:`\sum_d s_{c,d}^2/24 + \kappa_{c,d}` is the
midpoint rule's relative mass error, from the slope (:math:`s^2/24`) and the curvature
(:math:`\kappa_{c,d} = |\partial_d^2 l|\, w_{c,d}^2 / 24`), weighted by how much that
cell's mass moves the current rank :math:`r` (:math:`\epsilon` =
:data:`NORMALISER_WEIGHT` keeps the normaliser accurate). The cell that holds
:math:`\theta^*` always straddles, and its mass counts at least as if its density were
:math:`l^*` (its centre may miss a peak narrower than the cell, which the truth, near it,
reveals). Counting a cell's mass at its densest neighbour's level finds a mode that lies
between coarse centres: the centre nearest to it reads low, but the next one, on the
mode's other flank, reads high. Without :math:`\theta^*` (observed data) every cell scores :math:`m_c \min(1,
\sum_d s_{c,d}^2/24 + \kappa_{c,d})`. So refinement goes where the mass is, where the
density varies, and above all where the rank is decided; a posterior narrow along one
axis (a ridge) is cut along that axis only once the other is resolved. The ranges are
estimated from neighbours on the coarse grid (the larger difference to the two
neighbours along each axis) and, for a third, along the split axis from the differences
of the three values, which are one third's width apart (the middle third: the larger of
its two differences; an outer third: the larger of its own and half the difference of
the outer two); the curvature error of all three from their second difference,
:math:`|l_- + l_+ - 2 l_0| / 24`; along the other axes a third keeps its parent's. The
coarse cells' curvature errors come from the second differences with their neighbours.
The cells of an observation are shared by its E estimators (members and ensemble): a
cell's score is the largest of theirs. A chosen cell is split along the widest (relative
to the box) of its unresolved axes, those of range above :data:`RESOLVED`, which closes
in on a peak narrower than the cell from every side; once every axis is resolved, along
the axis of largest range. A cell is split at most ``depth`` times along each axis.

The masses read from the refined grid are corrected to second order
(:func:`mass_correction`): along each axis, the log density's slope and bend across a cell,
from its value and its neighbours' one cell width away (a third's along its split axis
come from the three values of its split, which are that far apart), turn the midpoint
mass :math:`e^{l_c} V_c` into :math:`e^{l_c + \delta_c} V_c`. This takes out the midpoint
rule's bias (too much mass near a peak, so ranks too high) without a further evaluation;
the refinement itself steers by the uncorrected masses.

A mode narrower than a coarse cell whose flanks do not reach any coarse centre, and that
does not hold :math:`\theta^*`, shows in none of the values, and can be missed; a
uniform grid misses it as well unless its cells are narrower than the mode. Neighbours
are tracked along each axis: a third's neighbours along the split axis are its siblings
and, for an outer third, its parent's neighbour on that side; along the other axes it
keeps its parent's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from .coverage import GRID_BATCH, grid_bins
from .partition import Partition, regular_partition

#: Refinement rounds the budget is spread over (each splits ``k`` cells per observation).
ROUNDS = 24

#: Log-density range (nats) across a cell above which an axis counts as unresolved.
RESOLVED = 2.0

#: Least weight of a less dense cell's mass error, which moves the rank by r only but the
#: normaliser (the log posterior) in full.
NORMALISER_WEIGHT = 0.25

#: Log score of a cell of zero score: split last, but splittable (a log score of -inf
#: marks a cell at full depth).
LEAST_SCORE = float(torch.finfo(torch.float64).min)

#: Largest second-order log-mass correction of a cell along one axis (nats): beyond it the
#: quadratic model of the log density across the cell is not to be trusted.
CORRECTION_BOUND = 0.5

#: Cells (observations × leaves) held at once, to bound the memory of one batch.
MAX_LEAVES = 2**22


def default_cells(dim: int) -> int:
    """Density evaluations per observation by default: as many as the uniform grid's 90² in
    1-D and 2-D (8,100), and as its 32³ (32,768) in 3-D and above."""
    return 8100 if dim <= 2 else 32768


@dataclass(frozen=True)
class Refinement:
    """Settings of the adaptive grid: ``coarse_bins`` per dimension to start from (reduced
    until the coarse grid is at most a quarter of the budget), ``cells`` density evaluations
    per observation in all (by default :func:`default_cells`), at most ``depth`` splits of a
    coarse cell along each axis, and ``tolerance`` on the summed error score below which an
    observation's refinement stops."""

    coarse_bins: int = 16
    cells: int | None = None
    depth: int = 16
    tolerance: float = 1e-4

    def __post_init__(self):
        if self.coarse_bins < 2:
            raise ValueError(f"coarse_bins must be >= 2, got {self.coarse_bins}")
        if not 1 <= self.depth <= 30:
            raise ValueError(f"refine_depth must be in 1..30, got {self.depth}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"refine_tolerance must be in (0, 1), got {self.tolerance}")
        if self.cells is not None and self.cells < 2 * self.coarse_bins:
            raise ValueError(
                f"refine_cells ({self.cells}) must be at least 2 * coarse_bins ({2 * self.coarse_bins}): "
                "it holds the coarse grid and its refinement"
            )

    def budget(self, dim: int) -> int:
        """Density evaluations per observation for ``dim`` parameters."""
        return default_cells(dim) if self.cells is None else self.cells

    def coarse(self, dim: int) -> int:
        """Coarse bins per dimension for ``dim`` parameters."""
        budget = self.budget(dim)
        bins = grid_bins(self.coarse_bins, dim, budget // 4)
        if bins**dim * 2 > budget:
            raise ValueError(f"refine_cells = {budget} cannot hold a coarse grid of 2 bins in {dim} dimensions")
        return bins

    def splits(self, dim: int) -> int:
        """Cells split per round and observation (two evaluations each)."""
        return max(1, (self.budget(dim) - self.coarse(dim) ** dim) // (ROUNDS * 2))

    def observations_per_batch(self, dim: int, rows: int = GRID_BATCH) -> int:
        """Observations refined together: about ``rows`` new cells per round, and at most
        :data:`MAX_LEAVES` cells held."""
        return max(1, min(rows // (self.splits(dim) * 2), MAX_LEAVES // self.budget(dim)))


@dataclass
class AdaptiveBatch:
    """The refined posteriors of observations ``rows``: their ``partition`` (n, G, D), the
    log density (E, n, G) at the cell centres, float64, the evaluations per observation, and
    each cell's second-order log-mass correction (E, n, G), float64 (:func:`mass_correction`)."""

    rows: slice
    partition: Partition
    log_density: Tensor
    evaluations: int
    log_mass_correction: Tensor


def mass_correction(below: Tensor, centre: Tensor, above: Tensor) -> Tensor:
    r"""Second-order log-mass correction of a cell along one axis, from the log density at
    its centre and one cell width below and above it.

    With :math:`l(t) \approx l_0 + g t + h t^2 / 2` across the cell :math:`|t| \le w/2`,
    :math:`\int e^{l} = w e^{l_0} (1 + ((g w)^2 + h w^2) / 24 + O(w^4))`, and
    :math:`g w = (l_+ - l_-) / 2`, :math:`h w^2 = l_+ + l_- - 2 l_0`. The log of that factor,
    clamped to :math:`\pm` :data:`CORRECTION_BOUND`; 0 where a value is NaN or infinite.
    """
    slope, bend = (above - below) / 2, above + below - 2 * centre
    return _bounded((slope**2 + bend) / 24)


def _bounded(correction: Tensor) -> Tensor:
    return torch.nan_to_num(correction, nan=0.0, posinf=0.0, neginf=0.0).clamp(-CORRECTION_BOUND, CORRECTION_BOUND)


def _coarse_variation(log_density: Tensor, bins: int, dim: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""Per-axis log-density range and curvature error of each coarse cell, each (E, n, G, D),
    and its neighbours' log densities (E, n, G, D, 2), below and above along each axis.

    Along each axis, the range is the larger difference to the two neighbours, and the
    curvature error :math:`|l_{+} + l_{-} - 2 l_c| / 24` (a neighbour outside the grid
    counts as the cell itself).
    """
    e, n, g = log_density.shape
    cube = log_density.reshape(e, n, *([bins] * dim))
    ranges, curvatures, neighbours = [], [], []
    for d in range(dim):
        axis = 2 + d
        edge = cube.narrow(axis, 0, 1), cube.narrow(axis, bins - 1, 1)
        before = torch.cat([edge[0], cube.narrow(axis, 0, bins - 1)], dim=axis)
        after = torch.cat([cube.narrow(axis, 1, bins - 1), edge[1]], dim=axis)
        ranges.append(torch.maximum((after - cube).abs(), (cube - before).abs()).reshape(e, n, g))
        curvatures.append(((after + before - 2 * cube).abs() / 24).reshape(e, n, g))
        neighbours.append(torch.stack([before.reshape(e, n, g), after.reshape(e, n, g)], dim=-1))
    ranges, curvatures = (torch.nan_to_num(torch.stack(v, dim=-1), nan=torch.inf) for v in (ranges, curvatures))
    return ranges, curvatures, torch.stack(neighbours, dim=-2)


def _rise(values: Tensor, neighbours: Tensor) -> Tensor:
    r"""How far (nats, :math:`\ge 0`) the densest neighbour of each cell rises above it,
    :math:`\max(0, \max_{d, \pm} l_{d, \pm} - l_c)`, from ``values`` (...) and
    ``neighbours`` (..., D, 2); 0 where either is NaN."""
    rise = neighbours.flatten(-2).amax(dim=-1).double() - values
    return torch.nan_to_num(rise, nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0.0)


def _span_and_error(ranges: Tensor, curvature: Tensor) -> tuple[Tensor, Tensor]:
    r"""A cell's log-density range :math:`s_c = \sum_d s_{c,d}` and its relative midpoint
    mass error :math:`\min(1, \sum_d s_{c,d}^2 / 24 + \kappa_{c,d})` from per-axis values (..., D)."""
    return ranges.sum(dim=-1), (ranges**2 / 24 + curvature).sum(dim=-1).clamp_max(1.0)


#: Classes of a cell against the truth's density: it may straddle the level set, it is
#: denser, or it is less dense (every cell, without the truth).
STRADDLES, DENSER, LESS = 0, 1, 2


def _classify(values: Tensor, span: Tensor, log_true: Tensor | None) -> Tensor:
    """Class of cells (E, n, C) against the truth's log density ``log_true`` (E, n)."""
    if log_true is None:
        return torch.full_like(values, LESS, dtype=torch.int64)
    truth = log_true[..., None]
    return torch.where((values - truth).abs() <= span, STRADDLES, torch.where(values > truth, DENSER, LESS))


def _log_weights(log_volume_value: Tensor, error: Tensor, kind: Tensor) -> Tensor:
    r""":math:`\log(e^{l_c} V_c)` plus the log of the score's factor that does not depend on
    the rank: 1 for a straddling cell, the relative mass error otherwise (E, n, C)."""
    factor = torch.where(kind == STRADDLES, torch.zeros_like(error), error.log())
    return torch.nan_to_num(log_volume_value + factor, nan=-torch.inf)


def _log_scores(
    log_weight: Tensor, log_volume_value: Tensor, kind: Tensor, values: Tensor, log_true: Tensor | None, own: Tensor | None
) -> Tensor:
    r"""Log error score of every cell (E, n, G), see the module docstring: the cell's
    ``log_weight`` (:func:`_log_weights`), less :math:`\log Z`, plus the log of the rank's
    weight of its class (1, :math:`1 - r` or :math:`\max(r, \epsilon)`); ``own`` (n,) is
    the index of the cell that holds the truth; ``log_volume_value`` is
    :math:`l_c + \log V_c`, -inf where the density is NaN."""
    log_z = log_volume_value.logsumexp(dim=-1, keepdim=True)  # (E, n, 1)
    score = log_weight - log_z
    if log_true is None:
        return score
    log_denser = torch.where(kind == DENSER, log_volume_value, -torch.inf).logsumexp(dim=-1, keepdim=True)
    rank = (log_denser - log_z).exp().clamp(0.0, 1.0)
    weights = torch.cat([torch.zeros_like(rank), (1 - rank).log(), rank.clamp_min(NORMALISER_WEIGHT).log()], dim=-1)
    score = score + torch.gather(weights, -1, kind)
    if own is not None:
        # the truth's cell reaches its density: it straddles, and holds at least the mass
        # it would have at that density
        index = own[None, :, None].expand(len(score), -1, 1)
        lift = (log_true[..., None] - torch.gather(values, -1, index)).clamp(0, 700)
        lifted = torch.gather(log_volume_value, -1, index) - log_z + torch.nan_to_num(lift, nan=0.0)
        score = score.scatter(-1, index, torch.maximum(lifted, torch.gather(score, -1, index)))
    return score


def refine(
    log_density: Callable[[Tensor, slice], Tensor],
    rows: slice,
    lower: np.ndarray,
    upper: np.ndarray,
    settings: Refinement,
    log_true: Tensor | None = None,
    device: torch.device | str | None = None,
    theta_true: Tensor | None = None,
) -> AdaptiveBatch:
    """The adaptive grid of observations ``rows``.

    ``log_density(theta, rows)`` gives the unnormalised log posterior (E, n, G) of those
    observations at per-observation parameters ``theta`` (n, G, D), float64; ``log_true``
    (E, n) its value at the true parameters ``theta_true`` (n, D), if known; the cells
    live on ``device`` (by default that of ``log_true``, else the CPU).
    """
    dim = len(lower)
    n = rows.stop - rows.start
    bins = settings.coarse(dim)
    if device is None:
        device = log_true.device if log_true is not None else torch.device("cpu")
    coarse = regular_partition(lower, upper, bins, device)
    centre, width = coarse.centre.expand(n, -1, -1), coarse.width.expand(n, -1, -1)
    values = log_density(centre, rows).double()
    e, g0 = len(values), centre.shape[1]
    k = settings.splits(dim)
    rounds = (settings.budget(dim) - g0) // (2 * k)
    capacity = g0 + rounds * 2 * k
    # buffers for every cell the rounds can make; the first ``count`` are the leaves
    centre_buf = torch.empty(n, capacity, dim, dtype=torch.float64, device=device)
    width_buf = torch.empty_like(centre_buf)
    values_buf = torch.empty(e, n, capacity, dtype=torch.float64, device=device)
    ranges_buf = torch.empty(e, n, capacity, dim, dtype=torch.float64, device=device)
    curvature_buf = torch.empty_like(ranges_buf)
    # neighbours' log densities below and above along each axis (float32: they only steer)
    neighbour_buf = torch.empty(e, n, capacity, dim, 2, dtype=torch.float32, device=device)
    lv_buf = torch.empty_like(values_buf)  # l_c + log V_c, -inf where l_c is NaN
    weight_buf = torch.empty_like(values_buf)  # see _log_weights
    kind_buf = torch.empty(e, n, capacity, dtype=torch.int64, device=device)
    depth_buf = torch.zeros(n, capacity, dim, dtype=torch.int64, device=device)
    open_buf = torch.empty(n, capacity, dtype=torch.bool, device=device)  # any axis left to split
    log_volume_buf = torch.empty(n, capacity, dtype=torch.float64, device=device)
    centre_buf[:, :g0], width_buf[:, :g0] = centre, width
    values_buf[..., :g0] = values
    ranges_buf[..., :g0, :], curvature_buf[..., :g0, :], neighbours = _coarse_variation(values, bins, dim)
    neighbour_buf[..., :g0, :, :] = neighbours
    # per-axis second-order log-mass corrections (float32: they are at most CORRECTION_BOUND)
    correction_buf = torch.empty(e, n, capacity, dim, dtype=torch.float32, device=device)
    below_coarse, above_coarse = neighbours.double().unbind(-1)
    correction_buf[..., :g0, :] = mass_correction(below_coarse, values[..., None], above_coarse)
    span, error = _span_and_error(ranges_buf[..., :g0, :], curvature_buf[..., :g0, :])
    log_volume_buf[:, :g0] = width.log().sum(dim=-1)
    lv_buf[..., :g0] = torch.nan_to_num(values + log_volume_buf[:, :g0], nan=-torch.inf)
    kind_buf[..., :g0] = _classify(values, span, log_true)
    weight_buf[..., :g0] = _log_weights(lv_buf[..., :g0] + _rise(values, neighbours), error, kind_buf[..., :g0])
    open_buf[:, :g0] = settings.depth > 0
    count, evaluations = g0, g0
    rows_n = torch.arange(n, device=device)[:, None]
    third = float(np.log(3.0))
    log_tolerance = float(np.log(settings.tolerance))
    side = torch.as_tensor(np.asarray(upper, np.float64) - np.asarray(lower, np.float64), device=device)
    own = None
    if theta_true is not None:
        theta_true = theta_true.to(device=device, dtype=torch.float64)
        own = Partition(centre_buf[:, :g0], width_buf[:, :g0]).contains(theta_true).byte().argmax(dim=-1)  # (n,)
    for _ in range(rounds):
        score = _log_scores(
            weight_buf[..., :count], lv_buf[..., :count], kind_buf[..., :count], values_buf[..., :count], log_true, own
        ).amax(dim=0)  # (n, G)
        if float(score.logsumexp(dim=-1).max()) <= log_tolerance:
            break
        # a cell of zero score (no mass, or no variation) can still be split, after every
        # other; one at full depth along every axis cannot
        score = torch.where(open_buf[:, :count], score.nan_to_num(nan=LEAST_SCORE).clamp_min(LEAST_SCORE), -torch.inf)
        top_score, top = torch.topk(score, min(k, count), dim=-1)  # (n, kk)
        if not bool(top_score.isfinite().all()):
            # cells at full depth in some observation: split only what all can
            kk = int(top_score.isfinite().sum(dim=-1).min())
            if kk == 0:
                break
            top = top[:, :kk]
        kk = top.shape[1]
        # the widest (relative to the box) of the unresolved axes, else the one of largest range
        open_top = depth_buf[rows_n, top] < settings.depth  # (n, kk, D)
        axis_range = torch.where(open_top, ranges_buf[:, rows_n, top].amax(dim=0), -1.0)  # (n, kk, D)
        unresolved = axis_range > RESOLVED
        relative = torch.where(unresolved, width_buf[rows_n, top] / side, -1.0)
        axis = torch.where(unresolved.any(dim=-1), relative.argmax(dim=-1), axis_range.argmax(dim=-1))  # (n, kk)
        chosen = torch.nn.functional.one_hot(axis, dim).bool()  # (n, kk, D)
        parent_width = width_buf[rows_n, top]
        step = chosen * parent_width / 3
        parent_centre = centre_buf[rows_n, top]
        outer = torch.stack([parent_centre - step, parent_centre + step], dim=2)  # (n, kk, 2, D)
        outer_values = log_density(outer.reshape(n, 2 * kk, dim), rows).double().reshape(e, n, kk, 2)
        evaluations += 2 * kk
        middle = values_buf[:, rows_n, top]  # (E, n, kk)
        low, high = outer_values[..., 0], outer_values[..., 1]
        # ranges along the split axis, from the differences between neighbouring thirds
        # (an outer third's own difference, or half the span of all three if larger)
        step_low, step_high = (middle - low).abs(), (high - middle).abs()
        half_span = (high - low).abs() / 2
        along = torch.stack(
            [torch.maximum(step_low, half_span), torch.maximum(step_low, step_high), torch.maximum(step_high, half_span)],
            dim=-1,
        )
        along = torch.nan_to_num(along, nan=torch.inf)  # (E, n, kk, 3): low, middle, high
        # the second difference at the thirds' spacing h is l'' h^2: a third's midpoint error is 1/24 of it
        bend = torch.nan_to_num((low + high - 2 * middle).abs() / 24, nan=torch.inf)[..., None].expand_as(along)
        per_child = chosen[:, :, None, :]  # (n, kk, 1, D)
        child_ranges = torch.where(per_child, along[..., None], ranges_buf[:, rows_n, top][:, :, :, None, :])
        child_curvature = torch.where(per_child, bend[..., None], curvature_buf[:, rows_n, top][:, :, :, None, :])
        child_span, child_error = _span_and_error(child_ranges, child_curvature)  # (E, n, kk, 3)
        # second-order mass corrections along the split axis: the slope at each third's
        # centre is the middle's, less or plus the bend; along the others, the parent's
        slope, bend = (high - low) / 2, low + high - 2 * middle
        along_correction = _bounded(torch.stack([(slope - bend) ** 2 + bend, slope**2 + bend, (slope + bend) ** 2 + bend], -1) / 24)
        child_correction = torch.where(per_child, along_correction[..., None].float(), correction_buf[:, rows_n, top][:, :, :, None, :])
        child_values = torch.stack([low, middle, high], dim=-1)
        # neighbours along the split axis: the parent's outer ones and the siblings
        parent_neighbours = neighbour_buf[:, rows_n, top]  # (E, n, kk, D, 2)
        along_axis = axis[None, :, :, None, None].expand(e, -1, -1, 1, 2)
        below, above = parent_neighbours.gather(-2, along_axis)[..., 0, :].unbind(-1)  # (E, n, kk)
        split_neighbours = torch.stack(
            [torch.stack([below, middle.float()], -1), torch.stack([low, high], -1).float(), torch.stack([middle.float(), above], -1)],
            dim=-2,
        )  # (E, n, kk, 3, 2)
        child_neighbours = torch.where(
            chosen[None, :, :, None, :, None], split_neighbours[..., None, :], parent_neighbours[:, :, :, None]
        )  # (E, n, kk, 3, D, 2)
        child_width = parent_width / torch.where(chosen, 3.0, 1.0)
        child_depth = depth_buf[rows_n, top] + chosen.long()
        child_open = (child_depth < settings.depth).any(dim=-1)
        child_log_volume = log_volume_buf[rows_n, top] - third
        child_lv = torch.nan_to_num(child_values + child_log_volume[None, :, :, None], nan=-torch.inf)
        child_kind = _classify(child_values.flatten(2), child_span.flatten(2), log_true).reshape(child_values.shape)
        child_weight = _log_weights(child_lv + _rise(child_values, child_neighbours), child_error, child_kind)
        if own is not None:
            # the child third that holds the truth: the middle one keeps the parent's index,
            # the lower one is appended at count + j, the upper one at count + kk + j
            hit = top == own[:, None]  # (n, kk)
            j = hit.byte().argmax(dim=-1)
            r = torch.arange(n, device=device)
            offset = ((theta_true - parent_centre[r, j]) * chosen[r, j]).sum(dim=-1)
            offset = offset / parent_width[r, j].gather(-1, axis[r, j, None])[:, 0]
            moved = torch.where(offset < -1 / 6, count + j, torch.where(offset > 1 / 6, count + kk + j, own))
            own = torch.where(hit.any(dim=-1), moved, own)
        # the middle third keeps its parent's place and value, the outer ones are appended
        width_buf[rows_n, top] = child_width
        ranges_buf[:, rows_n, top], curvature_buf[:, rows_n, top] = child_ranges[:, :, :, 1], child_curvature[:, :, :, 1]
        lv_buf[:, rows_n, top], weight_buf[:, rows_n, top] = child_lv[..., 1], child_weight[..., 1]
        kind_buf[:, rows_n, top] = child_kind[..., 1]
        neighbour_buf[:, rows_n, top] = child_neighbours[:, :, :, 1]
        correction_buf[:, rows_n, top] = child_correction[:, :, :, 1]
        depth_buf[rows_n, top], log_volume_buf[rows_n, top], open_buf[rows_n, top] = child_depth, child_log_volume, child_open
        for side_index, c in ((0, 0), (1, 2)):
            new = slice(count + side_index * kk, count + (side_index + 1) * kk)
            centre_buf[:, new], width_buf[:, new] = outer[:, :, side_index], child_width
            values_buf[..., new] = outer_values[..., side_index]
            ranges_buf[:, :, new], curvature_buf[:, :, new] = child_ranges[:, :, :, c], child_curvature[:, :, :, c]
            lv_buf[..., new], weight_buf[..., new], kind_buf[..., new] = child_lv[..., c], child_weight[..., c], child_kind[..., c]
            neighbour_buf[:, :, new] = child_neighbours[:, :, :, c]
            correction_buf[:, :, new] = child_correction[:, :, :, c]
            depth_buf[:, new], log_volume_buf[:, new], open_buf[:, new] = child_depth, child_log_volume, child_open
        count += 2 * kk
    centre, width, values = centre_buf[:, :count], width_buf[:, :count], values_buf[..., :count]
    correction = correction_buf[..., :count, :].double().sum(dim=-1)
    return AdaptiveBatch(rows, Partition(centre, width), values, evaluations, correction)


def adaptive_pass(
    log_density: Callable[[Tensor, slice], Tensor],
    n: int,
    lower: np.ndarray,
    upper: np.ndarray,
    settings: Refinement,
    log_true: Tensor | None = None,
    rows: int = GRID_BATCH,
    device: torch.device | str | None = None,
    theta_true: Tensor | None = None,
) -> Iterator[AdaptiveBatch]:
    """:func:`refine` over ``n`` observations in batches of
    :meth:`Refinement.observations_per_batch`."""
    step = settings.observations_per_batch(len(lower), rows)
    for a in range(0, n, step):
        batch = slice(a, min(a + step, n))
        truth = None if log_true is None else log_true[:, batch]
        yield refine(log_density, batch, lower, upper, settings, truth, device, None if theta_true is None else theta_true[batch])
