r"""What an estimator gives a training objective: logits of joint and of marginal pairs."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Logits(NamedTuple):
    r"""Classifier logits :math:`\log \hat r` of joint pairs :math:`(\theta, x)` and of
    marginal pairs :math:`(\theta', x)`, each (..., B).

    A density estimator :math:`q(\theta \mid x)` has the logits of its implied classifier,
    :math:`\log q(\theta \mid x) - \log p(\theta)`, and also gives ``log_prior``, the prior's
    log density :math:`\log p(\theta)` of the joint pairs (..., B), so that its likelihood
    :math:`\log q = \ell + \log p` is exact; ratio estimators leave it None.

    Two more are for the calibration-regularised methods (:mod:`bnre.methods.dcp`):
    ``sampled``, the log density :math:`\log q(\theta_s \mid x)` (..., B, S) of a density
    estimator's own reparameterised draws :math:`\theta_s` (given their noise), and
    ``ranks``, the rank statistic :math:`\alpha_i` (..., B) of each joint pair under the
    estimator. Both are None otherwise.
    """

    joint: Tensor
    marginal: Tensor
    log_prior: Tensor | None = None
    sampled: Tensor | None = None
    ranks: Tensor | None = None

    def map(self, f) -> "Logits":
        """``f`` applied to every tensor (None stays None)."""
        return Logits(*(None if t is None else f(t) for t in self))

    @staticmethod
    def cat(parts: "list[Logits]", dim: int = -1) -> "Logits":
        """The parts concatenated along the pairs' dimension ``dim``."""
        return Logits(*(None if ts[0] is None else torch.cat(ts, dim=dim) for ts in zip(*parts)))
