r"""Training methods as objects: each owns its estimator, its forward pass and its loss.

A method is built from a :class:`~bnre.config.TrainConfig`. Its :meth:`Method.logits`
runs an estimator (a plain :class:`~bnre.nn.RatioEstimator` or the trainer's stacked
members) on a batch of joint pairs :math:`(\theta_i, x_i)` and on marginal pairs
:math:`(\theta'_i, x_i)`, and :meth:`Method.loss` turns those logits into one objective
value per member. The trainer and the evaluation never branch on a method's name; a new
method is a subclass here and an entry in :data:`METHODS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar

from torch import Tensor

from .config import TrainConfig
from .losses import Logits, bnre_loss, marginal_theta, nre_loss
from .nn import RatioEstimator
from .tasks import Task


#: ``forward(theta, x, theta_marginal) -> Logits``: an estimator, or stacked members.
Forward = Callable[[Tensor, Tensor, Tensor], Logits]


def build_estimator(task: Task, hidden: list[int], activation: str) -> RatioEstimator:
    """The task's default embedding (and preprocessing) followed by an MLP head."""
    return RatioEstimator(
        task.lower,
        task.upper,
        task.embedding(),
        task.embedding_features(),
        hidden,
        activation,
        task.x_shape,
        task.preprocess(),
    )


class Method(ABC):
    """A ratio-estimation method: estimator, pairing of marginal samples, objective."""

    name: ClassVar[str]

    def __init__(self, config: TrainConfig):
        self.config = config

    def estimator(self, task: Task) -> RatioEstimator:
        """A freshly initialised estimator (seed torch's generator first)."""
        return build_estimator(task, self.config.hidden, self.config.activation)

    def marginal_theta(self, theta: Tensor) -> Tensor:
        r"""Marginal partners :math:`\theta'` of a batch (..., B, D) of parameters."""
        return marginal_theta(theta)

    def logits(self, forward: Forward, theta: Tensor, x: Tensor) -> Logits:
        """Logits of a batch's joint pairs and of its marginal pairs."""
        return forward(theta, x, self.marginal_theta(theta))

    @abstractmethod
    def loss(self, logits: Logits, epoch: int | None = None) -> Tensor:
        """The objective per member (over the last dimension) in ``epoch`` (1-based);
        ``epoch=None`` is the objective itself, as validation uses it."""

    def describe(self) -> str:
        return self.name.upper()


class NRE(Method):
    r"""Neural ratio estimation: the binary cross-entropy of joint against marginal pairs."""

    name = "nre"

    def loss(self, logits: Logits, epoch: int | None = None) -> Tensor:
        return nre_loss(logits.joint, logits.marginal)


class BNRE(Method):
    r"""Balanced NRE: NRE's loss plus :math:`\lambda (\mathbb{E}_{joint}[d] + \mathbb{E}_{marginal}[d] - 1)^2`."""

    name = "bnre"

    def weight(self, epoch: int | None = None) -> float:
        r""":math:`\lambda_e = \lambda \min(1, e / w)` in epoch :math:`e` with a linear warm-up
        over :math:`w` = ``lambda_warmup`` epochs (none when 0); the full :math:`\lambda`
        when ``epoch`` is None (validation, early stopping and the scheduler)."""
        warmup = self.config.lambda_warmup
        if epoch is None or not warmup:
            return self.config.lmbda
        return self.config.lmbda * min(1.0, epoch / warmup)

    def loss(self, logits: Logits, epoch: int | None = None) -> Tensor:
        return bnre_loss(logits.joint, logits.marginal, self.weight(epoch))

    def describe(self) -> str:
        return f"BNRE (lambda={self.config.lmbda})"


#: The methods by name.
METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (NRE, BNRE)}


def get_method(config: TrainConfig) -> Method:
    """The method ``config.method``, configured by ``config``."""
    try:
        return METHODS[config.method](config)
    except KeyError:
        raise ValueError(f"unknown method {config.method!r}; expected one of {tuple(METHODS)}") from None
