r"""A ratio estimator's head with its hidden layers in bfloat16, for grid evaluation.

Kept apart from :mod:`bnre.evaluation.precision` (the refinement, which needs no network) so that the
exact posterior's evaluation does not depend on the network code.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..nets.estimators import RatioEstimator


class LowPrecisionHead:
    r"""A ratio estimator's MLP head with its hidden layers in ``dtype``.

    The input layer runs in float32 on the rescaled :math:`\theta` (bfloat16's 8-bit
    mantissa would merge neighbouring cells) and the output layer in float32 on the last
    activations, so only the :math:`(H \times H)` products, nearly all the work, are in
    ``dtype``.
    """

    def __init__(self, estimator: RatioEstimator, dtype: torch.dtype = torch.bfloat16):
        layers = list(estimator.head)
        self.estimator, self.dtype = estimator, dtype
        self.first, self.activation, self.last = layers[0], layers[1], layers[-1]
        self.hidden = [copy.deepcopy(m).to(dtype).requires_grad_(False) for m in layers[2:-1:2]]

    @staticmethod
    def applies(estimator: nn.Module) -> bool:
        """Ratio estimators whose head alternates linear layers and a parameter-free activation."""
        if not isinstance(estimator, RatioEstimator):
            return False
        layers = list(estimator.head)
        return (
            len(layers) >= 3
            and all(isinstance(m, nn.Linear) for m in layers[::2])
            and all(not isinstance(m, nn.Linear) and not any(True for _ in m.parameters()) for m in layers[1::2])
        )

    def __call__(self, theta: Tensor, embedding: Tensor) -> Tensor:
        """As ``estimator.head_log_ratio``: ``theta`` (..., D) and ``embedding`` (..., E) broadcast."""
        h = self.activation(self.first(self.estimator.head_input(theta, embedding))).to(self.dtype)
        for layer in self.hidden:
            h = self.activation(layer(h))
        return self.last(h.float()).squeeze(-1)
