r"""Estimators conditioned on an embedding :math:`e(x)`, and ratio estimators
:math:`\log \hat r(\theta, x) = h(\theta, e(x))`.

The embedding :math:`e` of :math:`x` is computed once per observation and the head
:math:`h` is evaluated for every :math:`\theta`; this split makes grid evaluation cheap.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .logits import Logits

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


class ConditionalEstimator(nn.Module):
    r"""What every estimator shares: its inputs' scaling and the embedding :math:`e(x)`.

    Parameters are rescaled from the prior box to :math:`[-1, 1]` (unless
    ``rescale_theta`` is false); observations are transformed by the parameter-free
    ``preprocess`` (identity by default) and then standardised with ``x_mean`` and
    ``x_std`` (from the training set) before the embedding. Subclasses define
    :meth:`head_log_ratio`, the log-ratio :math:`\log \hat r(\theta, x)` from the embedding:
    evaluation, MCMC and the ensemble only use :meth:`embed` and :meth:`head_log_ratio`.
    """

    def __init__(
        self,
        lower: Sequence[float],
        upper: Sequence[float],
        embedding: nn.Module,
        x_shape: Sequence[int] = (),
        preprocess: nn.Module | None = None,
        rescale_theta: bool = True,
    ):
        super().__init__()
        lower_t = torch.as_tensor(np.asarray(lower), dtype=torch.float32)
        upper_t = torch.as_tensor(np.asarray(upper), dtype=torch.float32)
        if rescale_theta:
            self.register_buffer("theta_shift", (upper_t + lower_t) / 2)
            self.register_buffer("theta_scale", (upper_t - lower_t) / 2)
        else:  # raw parameters
            self.register_buffer("theta_shift", torch.zeros_like(lower_t))
            self.register_buffer("theta_scale", torch.ones_like(lower_t))
        self.register_buffer("x_mean", torch.zeros(tuple(x_shape)))
        self.register_buffer("x_std", torch.ones(tuple(x_shape)))
        self.preprocess = nn.Identity() if preprocess is None else preprocess
        self.embedding = embedding

    @torch.no_grad()
    def set_standardisation(self, x: Tensor | Iterable[Tensor], chunk: int = 4096) -> None:
        r"""Set the mean and standard deviation of preprocessed training data ``x``.

        ``x`` is a tensor (read in chunks of ``chunk`` rows) or an iterable of chunks.
        Sums are accumulated in float64 about the first chunk's mean :math:`c`:
        :math:`\mu = c + S_1 / n`, :math:`\sigma^2 = (S_2 - S_1^2 / n) / (n - 1)` with
        :math:`S_j = \sum_i (x_i - c)^j`, so a training set streamed in chunks gives the
        same statistics as one held in memory.
        """
        chunks = torch.split(x, chunk) if isinstance(x, Tensor) else x
        n, center, s1, s2 = 0, None, 0.0, 0.0
        for part in chunks:
            if len(part) == 0:
                continue
            part = self.preprocess(part.to(self.x_mean.device)).double()
            if center is None:
                center = part.mean(dim=0)
            d = part - center
            n, s1, s2 = n + len(part), s1 + d.sum(dim=0), s2 + (d * d).sum(dim=0)
        if center is None or n < 2:
            raise ValueError(f"standardisation needs at least 2 training rows, got {n}")
        mean = center + s1 / n
        var = ((s2 - s1 * s1 / n) / (n - 1)).clamp_min(0)
        self.x_mean.copy_(mean.float())
        self.x_std.copy_(var.sqrt().float().clamp_min(1e-6))

    def embed(self, x: Tensor) -> Tensor:
        """Embedding :math:`e(x)` of observations (N, ...) -> (N, E)."""
        return self.embedding((self.preprocess(x) - self.x_mean) / self.x_std)

    def head_log_ratio(self, theta: Tensor, embedding: Tensor) -> Tensor:
        r""":math:`\log \hat r(\theta, x)` from the embedding; ``theta`` (..., D) and ``embedding`` (..., E) broadcast."""
        raise NotImplementedError

    def log_prior(self, theta: Tensor) -> Tensor | None:
        """The prior's log density at ``theta`` where the estimator models densities, else None."""
        return None

    def forward(
        self, theta: Tensor, x: Tensor, theta_marginal: Tensor | None = None, noise: Tensor | None = None
    ) -> Tensor | Logits:
        r""":math:`\log \hat r(\theta, x)` (N,) for paired batches ``theta`` (N, D), ``x`` (N, ...).

        With ``theta_marginal`` (N, D), or (N, C, D) for C partners per observation, returns
        the :class:`~bnre.nets.logits.Logits` of the joint pairs :math:`(\theta, x)` and of the
        marginal pairs :math:`(\theta', x)`, (N) and (N) or (N, C), embedding each
        observation once. With ``noise`` (N, S, D) as well, a density estimator also gives
        the log density of its own draws from that noise (``sampled``, (N, S);
        :meth:`log_density_of_draws`).
        """
        embedding = self.embed(x)
        if theta_marginal is None:
            return self.head_log_ratio(theta, embedding)
        if theta_marginal.numel() == 0:  # no partners (..., N, 0, D): no marginal logits
            marginal = theta_marginal.new_zeros(theta_marginal.shape[:-1])
        else:
            partners = embedding if theta_marginal.dim() == theta.dim() else embedding.unsqueeze(-2)
            marginal = self.head_log_ratio(theta_marginal, partners)
        sampled = None if noise is None else self.log_density_of_draws(noise, embedding.unsqueeze(-2))
        return Logits(self.head_log_ratio(theta, embedding), marginal, self.log_prior(theta), sampled)

    def log_density_of_draws(self, noise: Tensor, embedding: Tensor) -> Tensor:
        r""":math:`\log q(\theta_s \mid x)` of the estimator's own reparameterised draws
        :math:`\theta_s = T^{-1}(z_s; x)` from base noise ``noise`` (..., D); only density
        estimators have draws of their own."""
        raise ValueError(f"{type(self).__name__} is a ratio estimator: it has no draws of its own")


class RatioEstimator(ConditionalEstimator):
    r"""Classifier logit :math:`\log \hat r(\theta, x) = h(\theta, e(x))`, an MLP head
    :math:`h` on the rescaled parameters and the embedding."""

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
        rescale_theta: bool = True,
    ):
        super().__init__(lower, upper, embedding, x_shape, preprocess, rescale_theta)
        self.head = MLP(len(self.theta_shift) + embedding_features, 1, hidden, activation)

    def head_input(self, theta: Tensor, embedding: Tensor) -> Tensor:
        """The head's input: the rescaled ``theta`` (..., D) beside ``embedding`` (..., E),
        broadcast, (..., D + E)."""
        theta = (theta - self.theta_shift) / self.theta_scale
        shape = torch.broadcast_shapes(theta.shape[:-1], embedding.shape[:-1])
        return torch.cat([theta.expand(*shape, theta.shape[-1]), embedding.expand(*shape, embedding.shape[-1])], dim=-1)

    def head_log_ratio(self, theta: Tensor, embedding: Tensor) -> Tensor:
        """Head :math:`h(\\theta, e)`; ``theta`` (..., D) and ``embedding`` (..., E) broadcast."""
        h = self.head_input(theta, embedding)
        if torch.is_grad_enabled():
            return self.head(h).squeeze(-1)
        # inference: activations in place, saving one allocation and pass per layer
        for layer in self.head:
            h = layer(h) if isinstance(layer, nn.Linear) or not hasattr(layer, "inplace") else _inplace(layer, h)
        return h.squeeze(-1)
