r"""Contrastive NRE (NRE-C, Miller et al. 2022) and its balanced form (BNRE-C, arXiv:2304.10978).

Both are written as lampe 0.9's ``CNRELoss`` and ``BCNRELoss`` (with which a test checks
them on the same inputs): a classifier of sets of :math:`K` parameters, built on the ratio
estimator :math:`\hat r(\theta, x)` of NRE, which the evaluation then uses unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nets.logits import Logits
from .base import Balanced, Forward, Method
from .config import TrainConfig


def contrastive_set_logits(log_ratio_joint: Tensor, log_ratio_others: Tensor, cardinality: int, gamma: float) -> Logits:
    r"""The set classifier's logits of contrastive NRE (Miller et al. 2022, in lampe's form).

    For each observation :math:`x_i` of a batch, the joint set is
    :math:`\Theta_i = \{\theta_i, \theta_{i+1}, \dots, \theta_{i+K-1}\}` and the marginal
    set :math:`\Theta'_i = \{\theta_{i-K}, \dots, \theta_{i-1}\}` (indices modulo the batch
    size :math:`B \ge 2K`); the set's logit is
    :math:`\log \frac{\gamma}{K} \sum_{\theta \in \Theta} \hat r(\theta, x_i)`.
    ``log_ratio_joint`` (..., B) is :math:`\log \hat r(\theta_i, x_i)` and
    ``log_ratio_others`` (..., B, 2K - 1) holds :math:`\log \hat r` at
    :math:`\theta_{i+1}, \dots, \theta_{i+K-1}` and then :math:`\theta_{i-K}, \dots, \theta_{i-1}`.
    """
    k = cardinality
    if log_ratio_others.shape[-1] != 2 * k - 1:
        raise ValueError(f"contrastive logits need {2 * k - 1} other parameters per observation, got {log_ratio_others.shape[-1]}")
    shift = math.log(gamma / k)
    joint = torch.cat([log_ratio_joint[..., None], log_ratio_others[..., : k - 1]], dim=-1)
    return Logits(torch.logsumexp(joint, dim=-1) + shift, torch.logsumexp(log_ratio_others[..., k - 1 :], dim=-1) + shift)


def contrastive_loss(logit_joint: Tensor, logit_marginal: Tensor, gamma: float = 1.0) -> Tensor:
    r"""The contrastive cross-entropy of set logits (:func:`contrastive_set_logits`), weighted
    by the odds :math:`\gamma`: :math:`\frac{\gamma}{\gamma + 1} \mathbb{E}[-\log d(\Theta, x)]
    + \frac{1}{\gamma + 1} \mathbb{E}[-\log(1 - d(\Theta', x))]`, means over the last dimension
    (lampe's ``CNRELoss``; :math:`\gamma = 1` and :math:`K = 1` give NRE's averaged loss)."""
    l1 = -F.logsigmoid(logit_joint).mean(-1)
    l0 = -F.logsigmoid(-logit_marginal).mean(-1)
    return (gamma * l1 + l0) / (gamma + 1)


class CNRE(Method):
    r"""Contrastive NRE (Miller et al. 2022) in lampe's form: a classifier of sets of
    :math:`K` = ``cardinality`` parameters, the joint set holding the observation's own
    parameter, with odds :math:`\gamma` = ``gamma`` (:func:`~bnre.methods.losses.contrastive_set_logits`).
    The estimator is a ratio :math:`\hat r(\theta, x)` as NRE's; :math:`K = \gamma = 1` is NRE."""

    name = "cnre"

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        if config.batch_size < 2 * config.cardinality:
            raise ValueError(
                f"{config.method}: batch_size ({config.batch_size}) must be at least 2 * cardinality "
                f"({2 * config.cardinality}), so that a batch holds a joint and a marginal set of each observation"
            )

    def permutations(self, seeds, members, epoch, budget, device) -> None:
        return None  # the sets are rolls of the batch

    def logits(
        self, forward: Forward, theta: Tensor, x: Tensor, permutation: Tensor | None = None, draws: Tensor | None = None
    ) -> Logits:
        k = self.config.cardinality
        if theta.shape[-2] < 2 * k:
            raise ValueError(f"contrastive sets of {k} need batches of at least {2 * k} pairs, got {theta.shape[-2]}")
        # theta_{i+1} ... theta_{i+K-1}, then theta_{i-K} ... theta_{i-1} (roll(t, s)[i] = t[i - s])
        shifts = [-j for j in range(1, k)] + [k - j for j in range(k)]
        others = torch.stack([torch.roll(theta, s, dims=-2) for s in shifts], dim=-2)
        logits = forward(theta, x, others)
        return contrastive_set_logits(logits.joint, logits.marginal, k, self.config.gamma)

    def validation_logits(self, forward: Forward, theta: Tensor, x: Tensor, theta_marginal: Tensor) -> Logits:
        """The sets are formed within the validation chunk, by the same rolls as in training."""
        return self.logits(forward, theta, x)

    def cross_entropy(self, logits: Logits) -> Tensor:
        return contrastive_loss(logits.joint, logits.marginal, self.config.gamma)

    def describe(self) -> str:
        return f"NRE-C (K={self.config.cardinality}, gamma={self.config.gamma})"


class BCNRE(Balanced, CNRE):
    r"""Balanced contrastive NRE (BNRE-C, arXiv:2304.10978): the balancing penalty on the
    set classifier's logits, as lampe's ``BCNRELoss``."""

    name = "bnre_c"

    def describe(self) -> str:
        return f"BNRE-C (K={self.config.cardinality}, gamma={self.config.gamma}, lambda={self.config.lmbda})"
