r"""NRE and BNRE objectives, and the balancing penalties every balanced method shares.

With logits :math:`\ell = \log \hat r` and :math:`d = \sigma(\ell)`, on joint pairs
:math:`(\theta, x) \sim p(\theta, x)` and marginal pairs
:math:`(\theta', x) \sim p(\theta)p(x)`:

.. math::
    \mathcal{L}_{NRE} = \tfrac12\left(\mathbb{E}_{p(\theta,x)}[-\log d(\theta,x)]
        + \mathbb{E}_{p(\theta)p(x)}[-\log(1 - d(\theta',x))]\right)

.. math::
    \mathcal{L}_{BNRE} = \mathcal{L}_{NRE} + \lambda \left(\mathbb{E}_{p(\theta,x)}[d]
        + \mathbb{E}_{p(\theta)p(x)}[d] - 1\right)^2

By default the two cross-entropy terms are **averaged** (the convention of lampe >= 0.7.1
and sbi); the authors' experiment code **summed** them (``bce="sum"``), which doubles the
cross-entropy, so their :math:`\lambda = 100` weighs the penalty as :math:`\lambda = 50`
does here. :math:`\lambda = 0` gives NRE exactly.

Every implementation (the authors', lampe, sbi, this one) squares a batch mean: with
:math:`v_b` the violation of batch :math:`b`, :math:`\mathbb{E}[v_b^2] = v^2 + \mathbb{V}[v_b]`,
the squared violation of the distribution plus a batch-variance part of order
:math:`1/B`. :func:`unbiased_penalty` multiplies the violations of the two halves of a
batch instead, whose expectation is :math:`v^2` exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor



def marginal_theta(theta: Tensor) -> Tensor:
    r"""Marginal partners :math:`\theta'` by rolling a batch (..., B, D) by one along the
    batch dimension: :math:`\theta'_i = \theta_{i-1}`."""
    return torch.roll(theta, 1, dims=-2)


def balancing(logit_joint: Tensor, logit_marginal: Tensor) -> Tensor:
    r"""Balancing value :math:`\mathbb{E}_{joint}[d] + \mathbb{E}_{marginal}[d]` (ideal 1).

    Means are over the last dimension, so a (K, B) batch gives one value per member.
    """
    return torch.sigmoid(logit_joint).mean(-1) + torch.sigmoid(logit_marginal).mean(-1)


def nre_loss(logit_joint: Tensor, logit_marginal: Tensor, bce: str = "mean") -> Tensor:
    """The two binary cross-entropies (labels 1 joint, 0 marginal), each a mean over the last
    dimension, averaged (``bce="mean"``) or summed (``bce="sum"``)."""
    total = -(F.logsigmoid(logit_joint).mean(-1) + F.logsigmoid(-logit_marginal).mean(-1))
    if bce == "mean":
        return total / 2
    if bce == "sum":
        return total
    raise ValueError(f"unknown cross-entropy convention {bce!r}; expected 'mean' or 'sum'")


def squared_penalty(logit_joint: Tensor, logit_marginal: Tensor) -> Tensor:
    r"""The batch's squared balancing violation :math:`(\mathbb{E}_{joint}[d] + \mathbb{E}_{marginal}[d] - 1)^2`."""
    return (balancing(logit_joint, logit_marginal) - 1) ** 2


def unbiased_penalty(logit_joint: Tensor, logit_marginal: Tensor) -> Tensor:
    r""":math:`v_1 v_2`, the product of the balancing violations of the first and second halves
    of the batch (:math:`\lfloor B/2 \rfloor` pairs each; an odd last pair is left out):
    halves are independent, so :math:`\mathbb{E}[v_1 v_2] = v^2`, the squared violation of
    the distribution, without the batch-variance part of :func:`squared_penalty`."""
    half = logit_joint.shape[-1] // 2
    if half < 1:
        raise ValueError("the unbiased penalty needs batches of at least 2 pairs")
    first = balancing(logit_joint[..., :half], logit_marginal[..., :half]) - 1
    second = balancing(logit_joint[..., half : 2 * half], logit_marginal[..., half : 2 * half]) - 1
    return first * second


PENALTIES = {"squared": squared_penalty, "unbiased": unbiased_penalty}


def bnre_loss(
    logit_joint: Tensor, logit_marginal: Tensor, lmbda: float = 100.0, bce: str = "mean", penalty: str = "squared"
) -> Tensor:
    r"""NRE loss plus :math:`\lambda` times the balancing penalty."""
    return nre_loss(logit_joint, logit_marginal, bce) + lmbda * PENALTIES[penalty](logit_joint, logit_marginal)
