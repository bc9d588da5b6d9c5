r"""What every method shares: the :class:`Method` interface, the balancing penalty
(:class:`Balanced`) and the ratio estimator of the task (:func:`build_estimator`).

A method is built from a :class:`~bnre.methods.config.TrainConfig`. Its :meth:`Method.logits`
runs an estimator (a plain :class:`~bnre.nets.estimators.ConditionalEstimator` or the trainer's stacked
members) on a batch of joint pairs :math:`(\theta_i, x_i)` and on marginal pairs
:math:`(\theta'_i, x_i)`, and :meth:`Method.loss` turns those logits into one objective
value per member. The trainer and the evaluation never branch on a method's name.
"""

from __future__ import annotations

from abc import ABC
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn

from ..nets.estimators import ConditionalEstimator, RatioEstimator
from ..nets.logits import Logits
from ..sampling import marginal_permutations
from ..tasks import Task
from .config import TrainConfig
from .losses import PENALTIES, marginal_theta, nre_loss


#: ``forward(theta, x, theta_marginal[, noise]) -> Logits``: an estimator, or stacked members.
Forward = Callable[..., Logits]


def input_preprocess(task: Task, normalise: str) -> nn.Module | None:
    """The preprocessing an estimator applies before its standardisation of x."""
    if normalise == "fixed":
        if not hasattr(task, "fixed_x_statistics"):
            raise ValueError(f"normalise 'fixed': task {task.name!r} defines no fixed statistics of x")
        return None
    return task.preprocess()


def apply_fixed_statistics(estimator: ConditionalEstimator, task: Task, normalise: str) -> ConditionalEstimator:
    if normalise == "fixed":
        mean, std = task.fixed_x_statistics()
        estimator.x_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).expand_as(estimator.x_mean))
        estimator.x_std.copy_(torch.as_tensor(std, dtype=torch.float32).expand_as(estimator.x_std))
    return estimator


def build_estimator(task: Task, hidden: list[int], activation: str, normalise: str = "train") -> RatioEstimator:
    r"""The task's default embedding (and preprocessing) followed by an MLP head.

    ``normalise="train"`` rescales :math:`\theta` from the prior box to :math:`[-1, 1]`
    (and :meth:`Method.standardise` then sets x's statistics from the training set);
    ``"none"`` feeds raw :math:`\theta` and raw (preprocessed) x; ``"fixed"`` feeds raw
    :math:`\theta` and x standardised with the task's fixed statistics
    (``task.fixed_x_statistics()``, on x before any preprocessing), as the authors did for
    M/G/1.
    """
    preprocess = input_preprocess(task, normalise)
    estimator = RatioEstimator(
        task.lower, task.upper, task.embedding(), task.embedding_features(), hidden, activation, task.x_shape,
        preprocess, rescale_theta=normalise == "train",
    )
    return apply_fixed_statistics(estimator, task, normalise)


class Method(ABC):
    """A method: estimator, pairing of marginal samples, objective."""

    name: ClassVar[str]
    #: whether training batches score marginal pairs (a likelihood alone needs none)
    marginal_pairs: ClassVar[bool] = True

    def __init__(self, config: TrainConfig, task: Task | None = None):
        self.check(config)
        self.config = config
        #: the task trained on, for methods that draw from its prior (None where none is needed)
        self.task = task

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        """Refuse options this method cannot train with (a ValueError naming the option)."""

    def estimator(self, task: Task) -> ConditionalEstimator:
        """A freshly initialised estimator (seed torch's generator first)."""
        return build_estimator(task, self.config.hidden, self.config.activation, self.config.normalise)

    def standardise(self, estimator: ConditionalEstimator, x_chunks) -> None:
        """Set the estimator's statistics of x from its training set (``normalise="train"``)."""
        if self.config.normalise == "train":
            estimator.set_standardisation(x_chunks)

    def marginal_theta(self, theta: Tensor, permutation: Tensor | None = None) -> Tensor:
        r"""Marginal partners :math:`\theta'` of a batch (..., B, D) of parameters:
        :math:`\theta_{i-1}` (``marginals="roll"``), or :math:`\theta_{\pi(i)}` for a
        random permutation ``permutation`` (..., B) of the batch (``marginals="permute"``,
        the authors' pairing: partners drawn with self-pairs possible)."""
        if self.config.marginals == "roll":
            return marginal_theta(theta)
        if permutation is None:
            raise ValueError("marginals 'permute' needs a permutation of the batch")
        return torch.gather(theta, -2, permutation[..., None].expand_as(theta))

    def permutations(self, seeds: list[int], members: list[int], epoch: int, budget: int, device) -> list[Tensor] | None:
        """The marginal permutation of every batch of ``epoch`` for the ``members`` (their
        seeds indexed by member id): per step a (K, B) tensor; None with ``marginals="roll"``."""
        if self.config.marginals == "roll" or not self.marginal_pairs:
            return None
        batch = self.config.batch_size
        per_member = [marginal_permutations(seeds[m], epoch, budget, batch) for m in members]
        return [torch.stack(step).to(device) for step in zip(*per_member)]

    def draws(self, seeds: list[int], members: list[int], epoch: int, step: int, n: int, device) -> Tensor | None:
        """The random inputs of batch ``step`` of ``epoch`` (``n`` pairs) that the objective
        needs beyond the pairs, for each of the ``members`` (their seeds indexed by member
        id), deterministic in (seed, epoch, step); None for the methods that need none."""
        return None

    def validation_partners(self, theta: Tensor) -> Tensor:
        r"""Marginal partners of the whole validation set (N, D): rolled over the set, or within
        each batch with ``validation_loss="batches"``; with ``marginals="permute"`` a fixed
        random permutation (seeded by ``seed``), over the set or within each batch."""
        batch = self.config.batch_size if self.config.validation_loss == "batches" else len(theta)
        generator = torch.Generator().manual_seed(self.config.seed)
        parts = []
        for a in range(0, len(theta), batch):
            chunk = theta[a : a + batch]
            permutation = torch.randperm(len(chunk), generator=generator).to(theta.device)
            parts.append(self.marginal_theta(chunk, permutation))
        return torch.cat(parts)

    def penalty_weight(self, epoch: int | None = None) -> float:
        """The penalty's weight in ``epoch`` (0 for unpenalised methods)."""
        return 0.0

    def logits(
        self, forward: Forward, theta: Tensor, x: Tensor, permutation: Tensor | None = None, draws: Tensor | None = None
    ) -> Logits:
        """Logits of a batch's joint pairs and of its marginal pairs (none, (..., 0), without
        :attr:`marginal_pairs`); ``draws`` are the batch's :meth:`draws`."""
        if not self.marginal_pairs:
            logits = forward(theta, x, theta.unsqueeze(-2)[..., :0, :])  # no partners: (..., B, 0, D)
            return logits._replace(marginal=logits.marginal.flatten(-2))
        return forward(theta, x, self.marginal_theta(theta, permutation))

    def validation_logits(self, forward: Forward, theta: Tensor, x: Tensor, theta_marginal: Tensor) -> Logits:
        """Logits of validation pairs, their marginal partners given (:meth:`validation_partners`)."""
        return forward(theta, x, theta_marginal)

    def cross_entropy(self, logits: Logits) -> Tensor:
        """The classification loss per member, in the configured convention (``bce``)."""
        return nre_loss(logits.joint, logits.marginal, self.config.bce)

    def penalty(self, logits: Logits, epoch: int | None = None) -> Tensor:
        """The weighted penalty per member in ``epoch`` (zero for unpenalised methods)."""
        return torch.zeros_like(logits.joint[..., 0])

    def loss(self, logits: Logits, epoch: int | None = None) -> Tensor:
        """The objective per member (over the last dimension) in ``epoch`` (1-based);
        ``epoch=None`` is the objective itself, as validation uses it."""
        return self.cross_entropy(logits) + self.penalty(logits, epoch)

    def describe(self) -> str:
        return self.name.upper()


class Balanced:
    r"""The balancing penalty :math:`\lambda (\mathbb{E}_{joint}[d] + \mathbb{E}_{marginal}[d] - 1)^2`
    on a method's classifier logits (mixed in before the method: ``class BNRE(Balanced, NRE)``)."""

    config: TrainConfig

    def penalty_weight(self, epoch: int | None = None) -> float:
        r""":math:`\lambda_e = \lambda \min(1, e / w)` in epoch :math:`e` with a linear warm-up
        over :math:`w` = ``lambda_warmup`` epochs (none when 0); the full :math:`\lambda`
        when ``epoch`` is None (validation, early stopping and the scheduler)."""
        warmup = self.config.lambda_warmup
        if epoch is None or not warmup:
            return self.config.lmbda
        return self.config.lmbda * min(1.0, epoch / warmup)

    def penalty(self, logits: Logits, epoch: int | None = None) -> Tensor:
        return self.penalty_weight(epoch) * PENALTIES[self.config.penalty](logits.joint, logits.marginal)
