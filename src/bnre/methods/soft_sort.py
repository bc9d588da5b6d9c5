r"""A differentiable sort: the L2-regularised soft sort of Blondel et al. (ICML 2020).

For values :math:`v \in \mathbb{R}^n` and a regularisation strength :math:`\varepsilon > 0`,
the ascending soft sort is the Euclidean projection of :math:`\rho / \varepsilon` onto the
permutahedron of :math:`-v` (the convex hull of its permutations), sign-flipped, with
:math:`\rho = (n, n - 1, \dots, 1)`. It reduces to an isotonic regression:

.. math::
    s_\varepsilon(v) = -\left(\rho / \varepsilon - \mathrm{iso}_\downarrow(\rho / \varepsilon - w)\right),
    \qquad w = \mathrm{sort}_\downarrow(-v),

where :math:`\mathrm{iso}_\downarrow(y)` is the non-increasing least-squares fit to
:math:`y`: blocks of consecutive entries, each replaced by its mean. As
:math:`\varepsilon \to 0` it is the hard sort; wherever consecutive sorted values differ by
at most :math:`1/\varepsilon` (values in :math:`[0, 1]` with :math:`\varepsilon \le 1`) no
block pools and it equals the hard sort, gradient included. This is torchsort's
``soft_sort`` (``regularization="l2"``), which lampe's DCP losses call.

The blocks come from :func:`scipy.optimize.isotonic_regression` (pool adjacent violators,
on the CPU, without gradient); the block means are then taken in torch, so that the
gradient is the exact one of the isotonic regression (a block's outputs each get the mean
of its inputs' gradients).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import isotonic_regression
from torch import Tensor


def isotonic_blocks(y: np.ndarray) -> np.ndarray:
    """The block of each entry (0, 1, ...) of the non-increasing least-squares fit to each row
    of ``y`` (R, n), offset so that blocks of different rows never share an id."""
    ids = np.empty(y.shape, dtype=np.int64)
    offset = 0
    for r, row in enumerate(y):
        starts = isotonic_regression(row, increasing=False).blocks[:-1]
        block = np.zeros(len(row), dtype=np.int64)
        block[starts[1:]] = 1
        ids[r] = np.cumsum(block) + offset
        offset = ids[r, -1] + 1
    return ids


def isotonic_decreasing(y: Tensor) -> Tensor:
    r""":math:`\mathrm{iso}_\downarrow(y)` along the last dimension of ``y`` (..., n), with its
    gradient: each block's mean."""
    flat = y.reshape(-1, y.shape[-1])
    ids = torch.as_tensor(isotonic_blocks(flat.detach().double().cpu().numpy()), device=y.device).flatten()
    sums = torch.zeros(int(ids[-1]) + 1, dtype=y.dtype, device=y.device).index_add(0, ids, flat.flatten())
    return (sums / torch.bincount(ids).to(y.dtype))[ids].reshape(y.shape)


def soft_sort(values: Tensor, strength: float = 1.0) -> Tensor:
    r"""The ascending soft sort :math:`s_\varepsilon` of ``values`` (..., n) along the last
    dimension, :math:`\varepsilon` = ``strength``."""
    if not strength > 0:
        raise ValueError(f"the soft sort's regularisation strength must be > 0, got {strength}")
    n = values.shape[-1]
    rho = torch.arange(n, 0, -1, dtype=values.dtype, device=values.device) / strength
    w = torch.sort(-values, dim=-1, descending=True).values
    return -(rho - isotonic_decreasing(rho - w))
