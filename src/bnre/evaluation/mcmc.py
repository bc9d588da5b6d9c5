r"""Monte Carlo coverage from posterior samples, for when a grid is too large.

Samples :math:`\theta_s \sim \hat p(\theta \mid x^*)` are drawn by random-walk
Metropolis on :math:`\log p(\theta) + \log \hat r(\theta, x^*)`, many chains at once (a
batch of observations times ``chains`` chains each). The rank of :math:`\theta^*` is then
estimated as the fraction of samples denser than it,

.. math:: \hat r = \frac1S \sum_s \mathbb{1}[\hat p(\theta_s \mid x^*) > \hat p(\theta^* \mid x^*)],

the Monte Carlo counterpart of :func:`bnre.evaluation.coverage.ranks`. Its error is about
:math:`\sqrt{r(1-r)/S_{eff}}` with :math:`S_{eff}` the effective sample size.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

LogDensity = Callable[[Tensor], Tensor]


@torch.no_grad()
def metropolis(
    log_density: LogDensity,
    lower: Tensor,
    upper: Tensor,
    shape: tuple[int, int],
    samples: int,
    burn: int = 200,
    thin: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Random-walk Metropolis chains on the box :math:`[l, u]`.

    ``log_density`` maps (n, c, D) to (n, c) and is :math:`-\infty` outside the box;
    ``shape`` = (n, c) chains start from uniform draws in the box. The proposal scale of
    each chain adapts during burn-in towards an acceptance rate of about 0.3. Returns
    (n, c * samples, D) samples.
    """
    n, c = shape
    d = len(lower)
    width = upper - lower
    state = lower + width * torch.rand(n, c, d, generator=generator, device=lower.device)
    log_p = log_density(state)
    scale = torch.full((n, c, 1), 0.2, device=lower.device)
    kept = []
    for step in range(burn + samples * thin):
        proposal = state + scale * width * torch.randn(n, c, d, generator=generator, device=lower.device)
        inside = ((proposal >= lower) & (proposal <= upper)).all(dim=-1)
        log_q = torch.full_like(log_p, float("-inf"))
        if inside.any():
            log_q = torch.where(inside, log_density(proposal.clamp(lower, upper)), log_q)
        accept = torch.rand(n, c, generator=generator, device=lower.device).log() < log_q - log_p
        state = torch.where(accept[..., None], proposal, state)
        log_p = torch.where(accept, log_q, log_p)
        if step < burn:
            scale = scale * torch.where(accept[..., None], 1.1, 0.95)
        elif (step - burn) % thin == 0:
            kept.append(state)
    return torch.stack(kept, dim=2).reshape(n, c * samples, d)


@torch.no_grad()
def mc_ranks(log_density: LogDensity, theta_true: Tensor, samples: Tensor) -> Tensor:
    """Fraction of ``samples`` (n, S, D) denser than ``theta_true`` (n, D), per observation."""
    log_true = log_density(theta_true[:, None])[:, 0]
    return (log_density(samples) > log_true[:, None]).double().mean(dim=-1)
