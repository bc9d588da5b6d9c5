r"""NRE and BNRE objectives.

With logits :math:`\ell = \log \hat r` and :math:`d = \sigma(\ell)`, on joint pairs
:math:`(\theta, x) \sim p(\theta, x)` and marginal pairs
:math:`(\theta', x) \sim p(\theta)p(x)`:

.. math::
    \mathcal{L}_{NRE} = \tfrac12\left(\mathbb{E}_{p(\theta,x)}[-\log d(\theta,x)]
        + \mathbb{E}_{p(\theta)p(x)}[-\log(1 - d(\theta',x))]\right)

.. math::
    \mathcal{L}_{BNRE} = \mathcal{L}_{NRE} + \lambda \left(\mathbb{E}_{p(\theta,x)}[d]
        + \mathbb{E}_{p(\theta)p(x)}[d] - 1\right)^2

The two cross-entropy terms are **averaged** (the convention of lampe >= 0.7.1 and
sbi); :math:`\lambda = 0` gives NRE exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class Logits(NamedTuple):
    r"""Classifier logits :math:`\log \hat r` of joint pairs :math:`(\theta, x)` and of
    marginal pairs :math:`(\theta', x)`, each (..., B)."""

    joint: Tensor
    marginal: Tensor


def marginal_theta(theta: Tensor) -> Tensor:
    r"""Marginal partners :math:`\theta'` by rolling a batch (..., B, D) by one along the
    batch dimension: :math:`\theta'_i = \theta_{i-1}`."""
    return torch.roll(theta, 1, dims=-2)


def balancing(logit_joint: Tensor, logit_marginal: Tensor) -> Tensor:
    r"""Balancing value :math:`\mathbb{E}_{joint}[d] + \mathbb{E}_{marginal}[d]` (ideal 1).

    Means are over the last dimension, so a (K, B) batch gives one value per member.
    """
    return torch.sigmoid(logit_joint).mean(-1) + torch.sigmoid(logit_marginal).mean(-1)


def nre_loss(logit_joint: Tensor, logit_marginal: Tensor) -> Tensor:
    """Mean of the two binary cross-entropies (labels 1 joint, 0 marginal), over the last dimension."""
    return -(F.logsigmoid(logit_joint).mean(-1) + F.logsigmoid(-logit_marginal).mean(-1)) / 2


def bnre_loss(logit_joint: Tensor, logit_marginal: Tensor, lmbda: float = 100.0) -> Tensor:
    r"""NRE loss plus :math:`\lambda` times the squared balancing violation."""
    penalty = (balancing(logit_joint, logit_marginal) - 1) ** 2
    return nre_loss(logit_joint, logit_marginal) + lmbda * penalty
