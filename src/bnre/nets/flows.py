r"""Posterior estimators :math:`q_\phi(\theta \mid x)`: a normalising flow on the embedding.

The flow (zuko's neural spline or masked autoregressive flow) models the parameters
rescaled from the prior box, :math:`z = (\theta - c) / s`, conditioned on :math:`e(x)`:

.. math:: \log q(\theta \mid x) = \log q_z(z \mid e(x)) - \textstyle\sum_i \log s_i .

As an estimator it gives the log-ratio of its implied classifier,
:math:`\log \hat r = \log q(\theta \mid x) - \log p(\theta)`, so the grid posterior
:math:`p(\theta) \hat r` of every diagnostic is :math:`q` itself (renormalised on the prior
box, which drops the flow's mass outside the prior's support), the balancing value is that
of :math:`d = \sigma(\log q - \log p)`, and an ensemble's mean ratio is the mixture of its
members' densities.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Sequence

import torch
import zuko
from torch import Tensor, nn

from .estimators import ConditionalEstimator

if TYPE_CHECKING:  # a task's prior; nets import no task at run time
    from ..tasks.priors import Prior

#: The flow families, by name: zuko's constructors ``(features, context, transforms, hidden_features, **)``.
FLOWS = {"nsf": zuko.flows.NSF, "maf": zuko.flows.MAF}


class PosteriorEstimator(ConditionalEstimator):
    r"""A conditional normalising flow :math:`q(\theta \mid x)` and its implied log-ratio."""

    def __init__(
        self,
        prior: Prior,
        embedding: nn.Module,
        embedding_features: int,
        flow: str = "nsf",
        transforms: int = 5,
        hidden: Sequence[int] = (128, 128),
        bins: int = 8,
        x_shape: Sequence[int] = (),
        preprocess: nn.Module | None = None,
        rescale_theta: bool = True,
    ):
        super().__init__(prior.lower, prior.upper, embedding, x_shape, preprocess, rescale_theta)
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r}; expected one of {sorted(FLOWS)}")
        options = dict(bins=bins) if flow == "nsf" else {}
        self.prior = prior
        self.flow = FLOWS[flow](prior.dim, embedding_features, transforms=transforms, hidden_features=tuple(hidden),
                                **options)

    def log_density(self, theta: Tensor, embedding: Tensor) -> Tensor:
        r""":math:`\log q(\theta \mid x)`; ``theta`` (..., D) and ``embedding`` (..., E) broadcast."""
        z = (theta - self.theta_shift) / self.theta_scale
        shape = torch.broadcast_shapes(z.shape[:-1], embedding.shape[:-1])
        z, embedding = z.expand(*shape, z.shape[-1]), embedding.expand(*shape, embedding.shape[-1])
        return self.flow(embedding).log_prob(z) - self.theta_scale.log().sum()

    def log_density_of_draws(self, noise: Tensor, embedding: Tensor) -> Tensor:
        r""":math:`\log q(\theta_s \mid x) = \log \mathcal{N}(z_s) - \log |\det J_{T^{-1}}(z_s)|
        - \sum_i \log s_i` of the draws :math:`\theta_s = c + s \, T^{-1}(z_s; e(x))` from base
        noise :math:`z_s` = ``noise`` (..., D), reparameterised (the gradient reaches the flow
        through the draws), as zuko's ``rsample_and_log_prob`` with given noise; ``embedding``
        (..., E) broadcasts."""
        shape = torch.broadcast_shapes(noise.shape[:-1], embedding.shape[:-1])
        distribution = self.flow(embedding.expand(*shape, embedding.shape[-1]))
        _, ladj = distribution.transform.inv.call_and_ladj(noise.expand(*shape, noise.shape[-1]))
        if distribution.reinterpreted:
            ladj = ladj.sum(dim=tuple(range(-distribution.reinterpreted, 0)))
        return distribution.base.log_prob(noise) - ladj - self.theta_scale.log().sum()

    def log_prior(self, theta: Tensor) -> Tensor:
        r""":math:`\log p(\theta)` at ``theta`` clamped into the prior box (finite everywhere,
        so that the implied log-ratio is finite; the evaluation adds the true log prior)."""
        return self.prior.log_prob(theta, clamp=True)

    def head_log_ratio(self, theta: Tensor, embedding: Tensor) -> Tensor:
        r"""The implied classifier's logit :math:`\log q(\theta \mid x) - \log p(\theta)`."""
        return self.log_density(theta, embedding) - self.log_prior(theta)

    @torch.no_grad()
    def sample(self, embedding: Tensor, n: int, generator: torch.Generator | None = None,
               max_rounds: int = 100) -> Tensor:
        r"""``n`` draws (n, D) of :math:`q(\theta \mid x)` restricted to the prior box, for one
        embedding (E,): the flow's draws outside the box are rejected (its posterior is zero
        there), as in the grid posterior. Raises if less than 1 in 10^4 draws lands inside."""
        kept, total, inside = [], 0, 0
        distribution = self.flow(embedding)
        lower = torch.as_tensor(self.prior.lower, dtype=torch.float32, device=embedding.device)
        upper = torch.as_tensor(self.prior.upper, dtype=torch.float32, device=embedding.device)
        for _ in range(max_rounds):
            batch = max(n - inside, 256) * 2
            with contextlib.nullcontext() if generator is None else _seeded(generator):
                z = distribution.sample((batch,))
            theta = self.theta_shift + self.theta_scale * z
            ok = ((theta >= lower) & (theta <= upper)).all(-1)
            kept.append(theta[ok])
            total, inside = total + batch, inside + int(ok.sum())
            if inside >= n:
                return torch.cat(kept)[:n]
            if total >= 10**4 and inside * 10**4 < total:
                break
        raise ValueError(
            f"the flow's draws fall outside the prior box: {inside} of {total} inside; "
            "its posterior mass on the box is too small to sample by rejection"
        )


class _seeded:
    """Draw from torch's global generator seeded from ``generator`` (zuko samples with the
    global one), restoring the global state afterwards."""

    def __init__(self, generator: torch.Generator):
        self.seed = int(torch.randint(0, 2**62, (), generator=generator))
        self.fork = torch.random.fork_rng(devices=[])

    def __enter__(self):
        self.fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self.fork.__exit__(*exc)

