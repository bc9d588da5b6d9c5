r"""Neural posterior estimation (NPE) and balanced NPE (BNPE, arXiv:2304.10978).

The estimator is a conditional flow :math:`q(\theta \mid x)` (:mod:`bnre.nets.flows`); as every
estimator it gives the evaluation a log-ratio, that of its implied classifier
:math:`\log q - \log p`, so every diagnostic applies unchanged.
"""

from __future__ import annotations

from torch import Tensor

from ..nets.flows import PosteriorEstimator
from ..nets.logits import Logits
from ..tasks import Task
from .base import Balanced, Method, apply_fixed_statistics, input_preprocess
from .config import TrainConfig


def nll_loss(log_density: Tensor) -> Tensor:
    r"""NPE's negative log-likelihood :math:`-\mathbb{E}_{p(\theta, x)}[\log q(\theta \mid x)]`,
    a mean over the last dimension."""
    return -log_density.mean(-1)


def build_posterior_estimator(task: Task, config: TrainConfig) -> PosteriorEstimator:
    """The task's default embedding followed by a conditional flow (``flow``, ``flow_transforms``,
    ``flow_hidden``, ``flow_bins``); inputs as :func:`build_estimator`'s."""
    estimator = PosteriorEstimator(
        task.prior, task.embedding(), task.embedding_features(), config.flow, config.flow_transforms,
        config.flow_hidden, config.flow_bins, task.x_shape, input_preprocess(task, config.normalise),
        rescale_theta=config.normalise == "train",
    )
    return apply_fixed_statistics(estimator, task, config.normalise)


class NPE(Method):
    r"""Neural posterior estimation: a conditional flow :math:`q(\theta \mid x)` trained by
    maximum likelihood, :math:`-\mathbb{E}_{p(\theta, x)}[\log q(\theta \mid x)]`
    (:mod:`bnre.nets.flows`). Training needs no marginal pairs; validation still scores them,
    for the implied classifier's balancing value."""

    name = "npe"
    marginal_pairs = False

    def estimator(self, task: Task) -> PosteriorEstimator:
        return build_posterior_estimator(task, self.config)

    def cross_entropy(self, logits: Logits) -> Tensor:
        """The negative log-likelihood (the loss's likelihood part)."""
        return nll_loss(logits.joint + logits.log_prior)

    def describe(self) -> str:
        c = self.config
        return f"NPE ({c.flow.upper()}, {c.flow_transforms} transforms of {c.flow_hidden})"


class BNPE(Balanced, NPE):
    r"""Balanced NPE (arXiv:2304.10978): NPE's likelihood plus the balancing penalty of the
    implied classifier :math:`d = \sigma(\log q(\theta \mid x) - \log p(\theta))`."""

    name = "bnpe"
    marginal_pairs = True  # the penalty needs them

    def describe(self) -> str:
        return f"B{NPE.describe(self)[:-1]}, lambda={self.config.lmbda})"
