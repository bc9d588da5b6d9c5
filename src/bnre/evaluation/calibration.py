r"""Calibration diagnostics of a grid posterior, without MCMC.

The posterior of an observation :math:`x^*` is given as normalised cell masses
:math:`m_c` (..., N, G) on the regular grid of :func:`bnre.evaluation.coverage.grid`: ``bins`` cells
per dimension over the prior box :math:`\prod_d [l_d, u_d]`, :math:`G = \text{bins}^D`,
cells in :func:`torch.cartesian_prod` order (last dimension fastest). The grid posterior
is piecewise constant, each cell's mass spread uniformly over the cell, and every
diagnostic below is exact for it:

* simulation-based calibration ranks of each marginal (:func:`sbc_ranks`), uniform for a
  calibrated posterior, with ECDF-difference curves and a uniformity test;
* per-parameter highest-density ranks (:func:`marginal_hpd_ranks`), the 1-D analogue of
  :func:`bnre.evaluation.coverage.ranks`;
* exact draws (:func:`sample_grid`) and the TARP expected coverage
  (:func:`tarp_coverage`) of Lemos et al. (ICML 2023);
* divergences between two grid posteriors (:func:`kl_divergence`,
  :func:`total_variation`).

Leading dimensions (e.g. one per estimator) broadcast throughout; the true parameters
are (N, D) or broadcast against (..., N, D).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import kstest
from torch import Tensor


def _box(lower: np.ndarray, upper: np.ndarray, like: Tensor) -> tuple[Tensor, Tensor]:
    """The box bounds as float64 tensors on the device of ``like``."""
    lo = torch.as_tensor(np.asarray(lower, np.float64), dtype=torch.float64, device=like.device)
    hi = torch.as_tensor(np.asarray(upper, np.float64), dtype=torch.float64, device=like.device)
    return lo, hi


def _check_grid(mass: Tensor, bins: int, dim: int) -> None:
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    if mass.shape[-1] != bins**dim:
        raise ValueError(f"mass has {mass.shape[-1]} cells, expected bins**dim = {bins}**{dim}")


def marginal_masses(mass: Tensor, bins: int, dim: int) -> list[Tensor]:
    r"""The 1-D marginal masses :math:`m^{(d)}_j = \sum_{c : c_d = j} m_c`, each (..., N, bins).

    ``mass`` (..., N, G) is reshaped to (..., N, bins, ..., bins) and summed over every
    parameter axis but :math:`d`.
    """
    _check_grid(mass, bins, dim)
    cube = mass.reshape(*mass.shape[:-1], *([bins] * dim))
    axes = [cube.dim() - dim + d for d in range(dim)]
    return [cube.sum(dim=[a for a in axes if a != axes[d]]) if dim > 1 else cube for d in range(dim)]


def _cell_position(theta_true: Tensor, lower: np.ndarray, upper: np.ndarray, bins: int) -> tuple[Tensor, Tensor]:
    r"""Cell index :math:`k_d` (long) and position :math:`t_d \in [0, 1]` inside it of each parameter.

    :math:`u_d = \text{bins}\,(\theta_d - l_d) / (u_d - l_d)`, :math:`k_d = \lfloor u_d \rfloor`
    clamped to the grid and :math:`t_d = u_d - k_d` clamped to :math:`[0, 1]`.
    """
    theta = theta_true.double()
    lo, hi = _box(lower, upper, theta)
    u = (theta - lo) / (hi - lo) * bins
    index = torch.floor(u).clamp(0, bins - 1)
    return index.long(), (u - index).clamp(0.0, 1.0)


def _gather(values: Tensor, index: Tensor) -> Tensor:
    """``values[..., n, index[..., n]]`` for values (..., N, bins) and index broadcast to (..., N)."""
    # numpy's rule, not torch.broadcast_shapes: its first call imports torch._refs (0.6 s)
    shape = np.broadcast_shapes(tuple(values.shape[:-1]), tuple(index.shape))
    values = values.expand(*shape, values.shape[-1])
    return torch.gather(values, -1, index.expand(shape)[..., None])[..., 0]


def sbc_ranks(mass: Tensor, theta_true: Tensor, lower: np.ndarray, upper: np.ndarray, bins: int) -> Tensor:
    r"""Continuous SBC ranks: the marginal posterior CDF at the truth, (..., N, D).

    With :math:`\theta^*_d` at position :math:`t_d \in [0, 1]` inside cell :math:`k_d`,

    .. math:: r_d = \sum_{j < k_d} m^{(d)}_j + t_d\, m^{(d)}_{k_d} ,

    the CDF of the piecewise-constant marginal (linear inside a cell). For a calibrated
    posterior, :math:`r_d \sim \mathcal{U}(0, 1)` (Talts et al. 2018, continuous form).
    ``theta_true`` is (N, D) or broadcasts against (..., N, D).
    """
    dim = theta_true.shape[-1]
    index, frac = _cell_position(theta_true.to(mass.device), lower, upper, bins)
    out = []
    for d, m in enumerate(marginal_masses(mass, bins, dim)):
        before = m.cumsum(dim=-1) - m
        k = index[..., d]
        out.append(_gather(before, k) + frac[..., d] * _gather(m, k))
    return torch.stack(out, dim=-1).clamp(0.0, 1.0)


def ecdf_difference(ranks: np.ndarray | Tensor, levels: np.ndarray) -> np.ndarray:
    r"""ECDF difference :math:`\hat F(\gamma) - \gamma` at each level, (..., L).

    :math:`\hat F(\gamma) = \frac1N \sum_i \mathbb{1}[r_i \le \gamma]`.
    ``ranks`` is (..., N). Plotted against :math:`\gamma` it is the
    ECDF-difference plot of Säilynoja et al. (2022): zero for uniform ranks; for SBC
    ranks an S-shape, positive below :math:`\gamma = \tfrac12` and negative above, for
    a too narrow posterior (ranks pile up at 0 and 1), its mirror image for a too wide
    one, and a :math:`\cap` (:math:`\cup`) for a posterior biased up (down).
    """
    r = np.asarray(ranks, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    ecdf = (r[..., None, :] <= levels[:, None]).mean(axis=-1)
    return ecdf - levels


def uniformity_pvalue(ranks: np.ndarray | Tensor) -> float:
    r"""Kolmogorov–Smirnov p-value of 1-D ``ranks`` (N,) against :math:`\mathcal{U}(0, 1)`."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"ranks must be 1-D, got shape {r.shape}")
    return float(kstest(r, "uniform").pvalue)


def marginal_hpd_ranks(mass: Tensor, theta_true: Tensor, lower: np.ndarray, upper: np.ndarray, bins: int) -> Tensor:
    r"""Per-parameter highest-density ranks, (..., N, D).

    The marginal mass of the cells strictly denser than the truth's cell :math:`k_d`,

    .. math:: r_d = \sum_j m^{(d)}_j \, \mathbb{1}[m^{(d)}_j > m^{(d)}_{k_d}] ,

    as in :func:`bnre.evaluation.coverage.ranks` with the marginal density at the truth's cell (cells
    have equal widths, so masses order as densities). The 1-D highest-density region at
    level :math:`\gamma` contains the truth's cell iff :math:`r_d < \gamma`; its expected
    coverage is :math:`\mathbb{P}(r_d < \gamma)`, see :func:`bnre.evaluation.coverage.coverage_curve`.
    A whole cell is in or out, so on the grid this coverage exceeds :math:`\gamma` by at
    most the largest marginal cell mass.
    """
    dim = theta_true.shape[-1]
    index, _ = _cell_position(theta_true.to(mass.device), lower, upper, bins)
    out = []
    for d, m in enumerate(marginal_masses(mass, bins, dim)):
        own = _gather(m, index[..., d])
        out.append((m * (m > own[..., None])).sum(dim=-1))
    return torch.stack(out, dim=-1)


def sample_grid(
    mass: Tensor,
    cells: Tensor,
    lower: np.ndarray,
    upper: np.ndarray,
    bins: int,
    samples: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Exact draws from the piecewise-constant grid posterior, (..., N, S, D), float64.

    A cell by inversion of the cumulative masses, :math:`c = \min\{c : M_c > v\}` with
    :math:`v \sim \mathcal{U}(0, 1)`, then :math:`\theta = \theta_c + (t - \tfrac12) \odot w`
    with :math:`t \sim \mathcal{U}([0, 1]^D)` and cell widths :math:`w = (u - l) / \text{bins}`.
    The uniforms are drawn once per observation and shared by the leading dimensions
    (common random numbers): identical estimators get identical draws, and differences
    between estimators are not blurred by independent sampling noise. ``cells`` (G, D) are
    the centres of :func:`bnre.evaluation.coverage.grid`.
    """
    dim = cells.shape[-1]
    _check_grid(mass, bins, dim)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    n, g = mass.shape[-2:]
    cumulative = mass.double().cumsum(dim=-1)
    cumulative = cumulative / cumulative[..., -1:]
    v = torch.rand((n, samples), generator=generator, dtype=torch.float64, device=mass.device)
    v = v.expand(*cumulative.shape[:-1], samples).contiguous()
    index = torch.searchsorted(cumulative, v, right=True).clamp_max(g - 1)
    lo, hi = _box(lower, upper, mass)
    centres = cells.to(mass.device).double()[index]
    jitter = torch.rand((n, samples, dim), generator=generator, dtype=torch.float64, device=mass.device)
    theta = centres + (jitter - 0.5) * (hi - lo) / bins
    # float32 centres may put a draw a rounding error outside the box
    return torch.maximum(torch.minimum(theta, hi), lo)


def tarp_credibility(
    samples: Tensor,
    theta_true: Tensor,
    lower: np.ndarray,
    upper: np.ndarray,
    references: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""TARP credibility of the truth, :math:`f` (..., N), float64.

    With distances in the box normalised to the unit cube,

    .. math:: f = \frac1S \sum_s \mathbb{1}\left[\lVert\theta_s - \theta_r\rVert < \lVert\theta^* - \theta_r\rVert\right] ,

    the posterior mass of the ball about the reference :math:`\theta_r` that reaches the
    truth (Lemos et al., ICML 2023). ``samples`` is (..., N, S, D), ``theta_true`` (N, D) or
    broadcast against (..., N, D); ``references`` likewise, by default one per pair drawn
    uniformly in the box from ``generator`` (shared by the leading dimensions).
    """
    n, dim = samples.shape[-3], samples.shape[-1]
    lo, hi = _box(lower, upper, samples)
    if references is None:
        references = torch.rand((n, dim), generator=generator, dtype=torch.float64).to(samples.device)
    else:
        references = (references.to(samples.device).double() - lo) / (hi - lo)
    scaled = (samples.double() - lo) / (hi - lo)
    truth = (theta_true.to(samples.device).double() - lo) / (hi - lo)
    d_samples = (scaled - references[..., None, :]).norm(dim=-1)
    d_truth = (truth - references).norm(dim=-1)
    return (d_samples < d_truth[..., None]).double().mean(dim=-1)


def tarp_coverage(
    samples: Tensor,
    theta_true: Tensor,
    lower: np.ndarray,
    upper: np.ndarray,
    levels: np.ndarray,
    references: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    r"""TARP expected coverage :math:`\hat C(\alpha) = \frac1N \sum_i \mathbb{1}[f_i < \alpha]`, (..., L).

    :math:`f` is :func:`tarp_credibility`; arguments as there. A calibrated posterior has
    :math:`C(\alpha) = \alpha` (up to :math:`1/(S+1)` from the finite sample). Unlike
    the highest-density coverage, a wrong spread bends this curve into an S about
    :math:`\alpha = \tfrac12`: a too narrow posterior puts :math:`f` near 0 or 1, so
    :math:`C(\alpha) > \alpha` at small and :math:`< \alpha` at large :math:`\alpha`; a
    too wide one puts :math:`f` inside :math:`(0, 1)`, the mirror image.
    """
    f = tarp_credibility(samples, theta_true, lower, upper, references, generator).cpu().numpy()
    return (f[..., None, :] < np.asarray(levels, np.float64)[:, None]).mean(axis=-1)


def tarp_auc(credibility: np.ndarray | Tensor) -> np.ndarray | float:
    r"""Signed area :math:`\int_0^1 (C(\alpha) - \alpha)\, d\alpha = \tfrac12 - \bar f` over the last axis.

    ``credibility`` is :func:`tarp_credibility` (..., N); the sign convention is that of
    :func:`bnre.evaluation.coverage.coverage_auc`. But a wrong spread mostly bends the TARP curve
    into an S (:func:`tarp_coverage`) whose signed area nearly cancels: on the box, with
    uniform references, a too narrow posterior even gives a small *positive* area
    (about :math:`\mathbb{E}|\theta^* - x| / 2(u - l)` in 1-D, for a point mass at :math:`x`). It flags
    bias, not over- or underconfidence; use :func:`uniformity_pvalue` of :math:`f`, or
    the curve itself, for those.
    """
    area = 0.5 - np.asarray(credibility, dtype=np.float64).mean(axis=-1)
    return float(area) if np.ndim(area) == 0 else area


def kl_divergence(log_p: Tensor, log_q: Tensor) -> Tensor:
    r"""Grid KL divergence :math:`\mathrm{KL}(p \,\|\, \hat p) = \sum_c p_c (\log p_c - \log \hat p_c)`, (..., N).

    ``log_p`` and ``log_q`` (..., N, G) are unnormalised log densities at the cell
    centres, normalised into cell masses by a float64 log-softmax. Cells with
    :math:`p_c = 0` contribute 0; :math:`\hat p_c = 0 < p_c` gives :math:`+\infty`.
    """
    log_p = torch.log_softmax(log_p.double(), dim=-1)
    log_q = torch.log_softmax(log_q.double(), dim=-1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum(dim=-1)


def total_variation(p_mass: Tensor, q_mass: Tensor) -> Tensor:
    r"""Total variation :math:`\tfrac12 \sum_c |p_c - \hat p_c|` of two cell masses (..., N, G), (..., N)."""
    return 0.5 * (p_mass.double() - q_mass.double()).abs().sum(dim=-1)
