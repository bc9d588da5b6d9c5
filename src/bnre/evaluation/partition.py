r"""Posteriors on a partition of the prior box into boxes of unequal size.

A partition is a set of axis-aligned cells :math:`\theta_c \pm w_c / 2` that tile the
prior box, one set per observation (shape (n, G, D)) or one shared by all (shape
(1, G, D), e.g. the uniform grid of :func:`bnre.evaluation.coverage.grid`). A posterior on it is
the unnormalised log density :math:`l_c` at the cell centres, one row per estimator
(E, n, G). It is read as piecewise constant: the cell's mass is

.. math:: m_c = \frac{e^{l_c} V_c}{\sum_{c'} e^{l_{c'}} V_{c'}}, \qquad V_c = \prod_d w_{c,d},

spread uniformly over the cell; an optional per-cell log-mass correction
:math:`\delta_c` (the adaptive grid's second-order term for the density's variation
across the cell) multiplies :math:`e^{l_c} V_c` by :math:`e^{\delta_c}`. Every function
below is exact for that density, whatever the cells' volumes: the normaliser :math:`\log Z = \log \sum_c e^{l_c} V_c`, the HPD rank
(the mass of the cells strictly denser than :math:`\theta^*`), HPD region sizes, moments,
marginal CDFs and marginal densities (a sweep over the cells' edges), exact draws, and
the resolution of a rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Partition:
    """Cells ``centre ± width / 2``, each (m, G, D) float64 with m = 1 (shared) or n."""

    centre: Tensor
    width: Tensor

    @property
    def log_volume(self) -> Tensor:
        """:math:`\\log V_c`, (m, G)."""
        return self.width.log().sum(dim=-1)

    @property
    def cells(self) -> int:
        return self.centre.shape[-2]

    def contains(self, theta: Tensor) -> Tensor:
        """Whether cell c holds ``theta`` (n, D), (n, G); a point on a shared face is in both."""
        distance = (theta.double()[:, None, :] - self.centre).abs()
        return (distance <= self.width / 2 * (1 + 1e-12)).all(dim=-1)


def regular_partition(lower: np.ndarray, upper: np.ndarray, bins: int, device: torch.device | str = "cpu") -> Partition:
    """The regular grid of ``bins`` cells per dimension over the box, shared (1, bins^D, D),
    in the cell order of :func:`bnre.evaluation.coverage.grid` (:func:`torch.cartesian_prod`), float64."""
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    width = (upper - lower) / bins
    axes = [torch.as_tensor(lo + (np.arange(bins) + 0.5) * w, device=device) for lo, w in zip(lower, width)]
    centre = torch.cartesian_prod(*axes).reshape(1, -1, len(axes))
    return Partition(centre, torch.as_tensor(width, device=device).expand_as(centre))


def log_contents(log_density: Tensor, partition: Partition, correction: Tensor | None = None) -> Tensor:
    r"""Unnormalised log cell masses :math:`l_c + \log V_c + \delta_c`, (E, n, G), float64,
    where :math:`\delta_c` is an optional log-mass ``correction`` (E, n, G) for the density's
    variation across the cell (:func:`bnre.evaluation.adaptive.mass_correction`); 0 without it."""
    content = log_density.double() + partition.log_volume
    return content if correction is None else content + correction


def log_masses(log_density: Tensor, partition: Partition, correction: Tensor | None = None) -> Tensor:
    r"""Normalised log cell masses :math:`\log m_c`, (E, n, G), float64 (see :func:`log_contents`)."""
    return torch.log_softmax(log_contents(log_density, partition, correction), dim=-1)


def log_normaliser(log_density: Tensor, partition: Partition, correction: Tensor | None = None) -> Tensor:
    r""":math:`\log Z = \log \sum_c e^{l_c + \delta_c} V_c`, (E, n) (see :func:`log_contents`)."""
    return torch.logsumexp(log_contents(log_density, partition, correction), dim=-1)


def hpd_ranks(log_density: Tensor, log_true: Tensor, mass: Tensor) -> Tensor:
    r"""Mass of the cells strictly denser than the truth, :math:`r = \sum_c m_c \mathbb{1}[l_c > l^*]`, (E, n)."""
    return (mass * (log_density > log_true[..., None])).sum(dim=-1)


def hdr_sizes(log_density: Tensor, mass: Tensor, partition: Partition, box_volume: float, levels: np.ndarray) -> Tensor:
    r"""Fraction of the box in the highest-density region at each credibility level, (E, n, L).

    The region at level :math:`\gamma` is the smallest set of densest cells (by density
    :math:`l_c`, not by mass) whose mass reaches :math:`\gamma`; empty at :math:`\gamma = 0`.
    """
    order = torch.argsort(log_density.double(), dim=-1, descending=True)
    cumulative = torch.gather(mass, -1, order).cumsum(dim=-1)
    volume = (partition.log_volume.exp() / box_volume).expand_as(mass)
    cumulative_volume = torch.gather(volume, -1, order).cumsum(dim=-1)
    target = torch.as_tensor(np.asarray(levels), dtype=torch.float64, device=mass.device)
    target = target.expand(*mass.shape[:-1], -1).contiguous()
    count = torch.searchsorted(cumulative.contiguous(), target - 1e-12).clamp_max(mass.shape[-1] - 1)
    size = torch.gather(cumulative_volume, -1, count)
    return torch.where(target > 0, size, torch.zeros_like(size))


def moments(mass: Tensor, partition: Partition) -> tuple[Tensor, Tensor]:
    r"""Posterior mean and variance per dimension, each (E, n, D).

    :math:`\mu = \sum_c m_c \theta_c`, :math:`\sigma^2 = \sum_c m_c \theta_c^2 - \mu^2`: the
    moments of the density sampled at the centres, which for a smooth density are closer
    to its own than the piecewise-constant density's (whose variance adds
    :math:`\sum_c m_c w_c^2 / 12`, Sheppard's correction in reverse).
    """
    centre = partition.centre.double().expand(mass.shape[1], -1, -1)
    mean = torch.einsum("eng,ngd->end", mass, centre)
    second = torch.einsum("eng,ngd->end", mass, centre**2)
    return mean, (second - mean**2).clamp_min(0)


def marginal_cdf(mass: Tensor, partition: Partition, theta: Tensor) -> Tensor:
    r"""Marginal CDF at ``theta`` (n, D) of every parameter, (E, n, D): the continuous SBC rank

    .. math:: F_d(\theta_d) = \sum_c m_c \,\mathrm{clip}\!\left(\frac{\theta_d - (\theta_{c,d} - w_{c,d}/2)}{w_{c,d}}, 0, 1\right).
    """
    low = partition.centre - partition.width / 2
    fraction = ((theta.double()[:, None, :] - low) / partition.width).clamp(0.0, 1.0)  # (n, G, D)
    return torch.einsum("eng,ngd->end", mass, fraction.expand(mass.shape[1], -1, -1)).clamp(0.0, 1.0)


def marginal_density(mass: Tensor, partition: Partition, d: int) -> tuple[Tensor, Tensor]:
    r"""The 1-D marginal of parameter ``d``: breakpoints (m, 2G) and density (E, n, 2G - 1).

    The marginal is piecewise constant between consecutive sorted cell edges; it is found
    by a sweep that adds :math:`m_c / w_{c,d}` at each cell's lower edge and removes it at
    its upper edge. Intervals between equal breakpoints have length 0.
    """
    centre, width = partition.centre[..., d], partition.width[..., d]
    edges = torch.cat([centre - width / 2, centre + width / 2], dim=-1)  # (m, 2G)
    order = torch.argsort(edges, dim=-1)
    step = mass / width
    steps = torch.cat([step, -step], dim=-1)  # (E, n, 2G)
    steps = torch.gather(steps, -1, order.expand_as(steps))
    density = steps.cumsum(dim=-1)[..., :-1].clamp_min(0)
    return torch.gather(edges, -1, order), density


def marginal_hpd_ranks(mass: Tensor, partition: Partition, theta: Tensor) -> Tensor:
    r"""Per-parameter highest-density ranks (E, n, D): the marginal mass strictly denser than
    the marginal density at :math:`\theta^*_d`, :math:`r_d = \int p_d(t) \mathbb{1}[p_d(t) > p_d(\theta^*_d)]\,dt`."""
    n = mass.shape[1]
    out = []
    for d in range(partition.centre.shape[-1]):
        points, density = marginal_density(mass, partition, d)
        points = points.expand(n, -1).contiguous()  # (n, 2G)
        length = points.diff(dim=-1)
        truth = theta[:, d, None].double().contiguous()  # (n, 1)
        where = (torch.searchsorted(points, truth, right=True) - 1).clamp(0, density.shape[-1] - 1)
        own = torch.gather(density, -1, where.expand(*density.shape[:-1], 1))
        # on an edge, the denser side
        left = torch.gather(density, -1, (where - 1).clamp_min(0).expand(*density.shape[:-1], 1))
        own = torch.where(torch.gather(points, -1, where) == truth, torch.maximum(own, left), own)
        # equal densities may differ by the sweep's rounding
        denser = density > own * (1 + 1e-9)
        out.append((length * density * denser).sum(dim=-1))
    return torch.stack(out, dim=-1).clamp(0.0, 1.0)


def marginal_quantiles(mass: Tensor, partition: Partition, probabilities: np.ndarray) -> Tensor:
    """Quantiles of every 1-D marginal, (E, n, D, P): the CDF is linear within each interval."""
    p = torch.as_tensor(np.asarray(probabilities, np.float64), device=mass.device)
    out = []
    for d in range(partition.centre.shape[-1]):
        points, density = marginal_density(mass, partition, d)
        points = points.expand(*density.shape[:-1], -1)
        cdf = torch.cat([torch.zeros_like(density[..., :1]), (density * points.diff(dim=-1)).cumsum(dim=-1)], dim=-1)
        cdf = cdf / cdf[..., -1:]
        target = p.expand(*cdf.shape[:-1], -1).contiguous()
        j = torch.searchsorted(cdf.contiguous(), target, right=True).clamp(1, cdf.shape[-1] - 1)
        c0, c1 = torch.gather(cdf, -1, j - 1), torch.gather(cdf, -1, j)
        x0, x1 = torch.gather(points, -1, j - 1), torch.gather(points, -1, j)
        t = torch.where(c1 > c0, (target - c0) / (c1 - c0), torch.zeros_like(target))
        out.append(x0 + t.clamp(0, 1) * (x1 - x0))
    return torch.stack(out, dim=-2)


def sample(mass: Tensor, partition: Partition, samples: int, generator: torch.Generator | None = None) -> Tensor:
    r"""Exact draws of the piecewise-constant posterior, (E, n, S, D), float64.

    A cell by inversion of the cumulative masses, then a uniform point in it. The uniforms
    are drawn once per observation and shared by the E rows (common random numbers).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    e, n, g = mass.shape
    dim = partition.centre.shape[-1]
    cumulative = mass.double().cumsum(dim=-1)
    cumulative = cumulative / cumulative[..., -1:]
    v = torch.rand((n, samples), generator=generator, dtype=torch.float64, device=mass.device)
    index = torch.searchsorted(cumulative.contiguous(), v.expand(e, -1, -1).contiguous(), right=True).clamp_max(g - 1)
    jitter = torch.rand((n, samples, dim), generator=generator, dtype=torch.float64, device=mass.device)
    centre = partition.centre.expand(n, -1, -1)
    width = partition.width.expand(n, -1, -1)
    flat = index.reshape(e, n * samples)
    rows = torch.arange(n, device=mass.device).repeat_interleave(samples)
    c = centre[rows[None].expand(e, -1), flat].reshape(e, n, samples, dim)
    w = width[rows[None].expand(e, -1), flat].reshape(e, n, samples, dim)
    return c + (jitter - 0.5) * w


def unresolved(log_density: Tensor, log_true: Tensor, mass: Tensor, partition: Partition, theta: Tensor) -> Tensor:
    r"""Whether the rank of :math:`\theta^*` is beyond the partition's resolution, (E, n) bool:
    :math:`\theta^*` is denser than every cell, or its own cell holds more than half the mass."""
    above_all = log_true > log_density.amax(dim=-1)
    own = partition.contains(theta)
    own_mass = (mass * own).amax(dim=-1)
    return above_all | (own_mass > 0.5)
