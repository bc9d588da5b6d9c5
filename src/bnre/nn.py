r"""Ratio estimators :math:`\log \hat r(\theta, x) = h(\theta, e(x))`.

The embedding :math:`e` of :math:`x` is computed once per observation and the head
:math:`h` is evaluated for every :math:`\theta`; this split makes grid evaluation cheap.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "SELU": nn.SELU,
    "ReLU": nn.ReLU,
    "ELU": nn.ELU,
    "SiLU": nn.SiLU,
    "GELU": nn.GELU,
}


class MLP(nn.Sequential):
    """Multi-layer perceptron ``in -> hidden... -> out`` with the given activation."""

    def __init__(
        self, in_features: int, out_features: int, hidden: Sequence[int], activation: str = "SELU"
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), ACTIVATIONS[activation]()]
            in_features = width
        layers.append(nn.Linear(in_features, out_features))
        super().__init__(*layers)


def _inplace(activation: nn.Module, h: Tensor) -> Tensor:
    """Apply an activation that supports ``inplace`` in place."""
    inplace = activation.inplace
    activation.inplace = True
    try:
        return activation(h)
    finally:
        activation.inplace = inplace


class RatioEstimator(nn.Module):
    r"""Classifier logit :math:`\log \hat r(\theta, x)`.

    Parameters are rescaled from the prior box to :math:`[-1, 1]`; observations are
    transformed by the parameter-free ``preprocess`` (identity by default) and then
    standardised with ``x_mean`` and ``x_std`` (from the training set) before the
    embedding.
    """

    def __init__(
        self,
        lower: Sequence[float],
        upper: Sequence[float],
        embedding: nn.Module,
        embedding_features: int,
        hidden: Sequence[int],
        activation: str = "SELU",
        x_shape: Sequence[int] = (),
        preprocess: nn.Module | None = None,
    ):
        super().__init__()
        lower_t = torch.as_tensor(np.asarray(lower), dtype=torch.float32)
        upper_t = torch.as_tensor(np.asarray(upper), dtype=torch.float32)
        self.register_buffer("theta_shift", (upper_t + lower_t) / 2)
        self.register_buffer("theta_scale", (upper_t - lower_t) / 2)
        self.register_buffer("x_mean", torch.zeros(tuple(x_shape)))
        self.register_buffer("x_std", torch.ones(tuple(x_shape)))
        self.preprocess = nn.Identity() if preprocess is None else preprocess
        self.embedding = embedding
        self.head = MLP(len(lower_t) + embedding_features, 1, hidden, activation)

    def set_standardisation(self, x: Tensor) -> None:
        """Set the mean and standard deviation of preprocessed training data ``x``."""
        x = self.preprocess(x)
        self.x_mean.copy_(x.mean(dim=0))
        self.x_std.copy_(x.std(dim=0).clamp_min(1e-6))

    def embed(self, x: Tensor) -> Tensor:
        """Embedding :math:`e(x)` of observations (N, ...) -> (N, E)."""
        return self.embedding((self.preprocess(x) - self.x_mean) / self.x_std)

    def head_log_ratio(self, theta: Tensor, embedding: Tensor) -> Tensor:
        """Head :math:`h(\\theta, e)`; ``theta`` (..., D) and ``embedding`` (..., E) broadcast."""
        theta = (theta - self.theta_shift) / self.theta_scale
        shape = torch.broadcast_shapes(theta.shape[:-1], embedding.shape[:-1])
        theta = theta.expand(*shape, theta.shape[-1])
        embedding = embedding.expand(*shape, embedding.shape[-1])
        h = torch.cat([theta, embedding], dim=-1)
        if torch.is_grad_enabled():
            return self.head(h).squeeze(-1)
        # inference: activations in place, saving one allocation and pass per layer
        for layer in self.head:
            h = layer(h) if isinstance(layer, nn.Linear) or not hasattr(layer, "inplace") else _inplace(layer, h)
        return h.squeeze(-1)

    def forward(self, theta: Tensor, x: Tensor, theta_marginal: Tensor | None = None) -> Tensor:
        r""":math:`\log \hat r(\theta, x)` for paired batches ``theta`` (N, D), ``x`` (N, ...).

        With ``theta_marginal`` (N, D), returns the 2N logits of the joint pairs
        :math:`(\theta, x)` then of the marginal pairs :math:`(\theta', x)`, embedding
        each observation once.
        """
        embedding = self.embed(x)
        if theta_marginal is None:
            return self.head_log_ratio(theta, embedding)
        return torch.cat([self.head_log_ratio(theta, embedding), self.head_log_ratio(theta_marginal, embedding)], dim=-1)
