r"""Calibration-regularised NRE and NPE (CalNRE, CalNPE): the differentiable coverage
probability (DCP) regulariser of Falkiewicz et al. (NeurIPS 2023, arXiv:2310.13402).

For a pair :math:`(\theta_i, x_i) \sim p(\theta, x)` and the estimator's posterior
:math:`q(\theta \mid x)`, the rank statistic is the mass of the region less dense than
:math:`\theta_i`,

.. math:: \alpha_i = \mathbb{E}_{q(\theta_s \mid x_i)}\, 1[q(\theta_i \mid x_i) > q(\theta_s \mid x_i)],

uniform on :math:`[0, 1]` for a calibrated :math:`q`, small for an overconfident one (it is
1 minus the HPD rank of :mod:`bnre.evaluation.coverage`). It is estimated with
:math:`S` draws per pair: for NRE, self-normalised importance samples from the prior
(weights :math:`\propto \hat r(\theta_s, x_i)`); for NPE, the flow's own reparameterised
draws. The indicator is a straight-through step (forward a Heaviside, backward the hardtanh
of the incoming gradient) on the difference of densities :math:`q_i - q_s` (lampe's), or,
with ``dcp_step: log_density``, of log densities :math:`\log q_i - \log q_s`. Both give the
same indicator, but the first's gradient with respect to :math:`\log q` carries a factor
:math:`q`, unbounded where the posterior is narrow. Sorted by a differentiable sort
(:mod:`.soft_sort`) into :math:`\alpha_{(1)} \le \dots \le \alpha_{(N)}`, the batch's ranks
give the regulariser

.. math:: R = \frac1N \sum_{j=1}^N \mathrm{ReLU}\left(\tfrac{j}{N} - \alpha_{(j)}\right)^2,

zero for conservative ranks; with ``dcp_calibration`` the ReLU is dropped (two-sided). The
objective is the method's own loss plus :math:`\lambda R`. This is lampe 0.9's
``DCPNRELoss`` and ``DCPNPELoss`` (``benchmarks/dcp_against_lampe.py`` checks them on the
same inputs and draws), written for stacked members.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nets.logits import Logits
from ..sampling import batch_draws_rng, validation_draws_rng
from .base import Forward
from .npe import NPE
from .nre import NRE
from .soft_sort import soft_sort


class StraightThroughStep(torch.autograd.Function):
    r"""Forward :math:`1[u > 0]`; backward the incoming gradient clipped to :math:`[-1, 1]`."""

    @staticmethod
    def forward(ctx, u: Tensor) -> Tensor:
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return F.hardtanh(grad)


def rank_statistics(
    log_q: Tensor, log_q_draws: Tensor, log_weights: Tensor | None = None, log_space: bool = False
) -> Tensor:
    r""":math:`\alpha_i = \sum_s w_{is}\, 1[q(\theta_i \mid x_i) > q(\theta_{is} \mid x_i)]` (..., B)
    from the log densities of the pairs ``log_q`` (..., B) and of their draws ``log_q_draws``
    (..., B, S), the indicator a straight-through step on the densities' difference
    :math:`q_i - q_{is}` (lampe's), or with ``log_space`` on :math:`\log q_i - \log q_{is}`:
    the same indicator (but where :math:`\exp` overflows or underflows), and a gradient with
    respect to :math:`\log q` without the density step's factor :math:`q`. The weights are
    the self-normalised :math:`\exp` of ``log_weights`` (..., B, S) (importance sampling),
    or :math:`1/S` (draws of :math:`q` itself). Computed in float32 at least (under bfloat16
    autocast too), since the indicators compare densities that may differ in few digits."""
    dtype = torch.promote_types(log_q.dtype, torch.float32)
    log_q, log_q_draws = log_q.to(dtype), log_q_draws.to(dtype)
    log_weights = None if log_weights is None else log_weights.to(dtype)
    if log_space:
        step = StraightThroughStep.apply(log_q.unsqueeze(-1) - log_q_draws)
    else:
        step = StraightThroughStep.apply(log_q.exp().unsqueeze(-1) - log_q_draws.exp())
    if log_weights is None:
        return step.mean(-1)
    return (torch.softmax(log_weights, dim=-1) * step).sum(-1)


def coverage_regulariser(ranks: Tensor, calibration: bool = False, strength: float = 1.0) -> Tensor:
    r""":math:`\frac1N \sum_j a(j/N - \alpha_{(j)})^2` over the last dimension of ``ranks``
    (..., N), :math:`\alpha_{(j)}` their soft sort of strength ``strength``, :math:`a` the
    ReLU (conservative) or, with ``calibration``, the identity."""
    ecdf = soft_sort(ranks, strength)
    levels = torch.linspace(0.0, 1.0, ranks.shape[-1] + 1, dtype=ranks.dtype, device=ranks.device)[1:]
    gap = levels - ecdf
    return (gap if calibration else F.relu(gap)).square().mean(-1)


class Calibrated:
    r"""The DCP regulariser :math:`\lambda R` in a method's penalty (mixed in before the
    method). The method's :meth:`draws` give each pair ``dcp_samples`` draws and its
    :meth:`logits` give the pairs' ``ranks``."""

    #: lampe's default weight for this method
    default_lambda: ClassVar[float]

    def log_space(self) -> bool:
        """Whether the ranks' straight-through step compares log densities (``dcp_step``)."""
        return self.config.dcp_step == "log_density"

    def step_note(self) -> str:
        """The description's note of a non-default straight-through step."""
        return ", step on log densities" if self.log_space() else ""

    def regulariser_weight(self) -> float:
        """:math:`\\lambda`: ``dcp_lambda``, or the method's default where it is None."""
        weight = self.config.dcp_lambda
        return self.default_lambda if weight is None else weight

    def sample(self, n: int, rng) -> Tensor:
        """``n`` draws (n, S, D) for the pairs' ranks, float32."""
        raise NotImplementedError

    def draws(self, seeds: list[int], members: list[int], epoch: int, step: int, n: int, device) -> Tensor:
        """(K, n, S, D): each member's draws for the ``n`` pairs of batch ``step`` of ``epoch``."""
        return torch.stack([self.sample(n, batch_draws_rng(seeds[m], epoch, step)) for m in members]).to(device)

    def validation_partners(self, theta: Tensor) -> Tensor:
        """(N, 1 + S, D): each validation pair's marginal partner, then its draws, which are
        fixed across epochs (seeded by the root seed)."""
        partners = super().validation_partners(theta)
        draws = self.sample(len(theta), validation_draws_rng(self.config.seed)).to(theta.device)
        return torch.cat([partners.unsqueeze(-2), draws], dim=-2)

    def penalty(self, logits: Logits, epoch: int | None = None) -> Tensor:
        """:math:`\\lambda R` per member, from the batch's ranks (``logits.ranks``)."""
        c = self.config
        return self.regulariser_weight() * coverage_regulariser(logits.ranks, c.dcp_calibration, c.dcp_sort_strength)


class CalNRE(Calibrated, NRE):
    r"""NRE with the DCP regulariser: the ranks from self-normalised importance samples of
    the prior, :math:`q = \hat r\, p`."""

    name = "calnre"
    default_lambda = 5.0

    def sample(self, n: int, rng) -> Tensor:
        if self.task is None:
            raise ValueError("calnre draws from the prior: build the method with its task (get_method(config, task))")
        s = self.config.dcp_samples
        return torch.as_tensor(self.task.prior.sample(n * s, rng), dtype=torch.float32).reshape(n, s, -1)

    def ranked(self, logits: Logits, theta: Tensor, draws: Tensor) -> Logits:
        """The joint pairs' logits, their marginal partners' (the first of ``logits.marginal``)
        and their ranks, from the log-ratios of the prior's ``draws`` (the rest)."""
        log_prior = self.task.prior.log_prob
        log_ratio_draws = logits.marginal[..., 1:]
        ranks = rank_statistics(logits.joint + log_prior(theta), log_ratio_draws + log_prior(draws), log_ratio_draws,
                                log_space=self.log_space())
        return Logits(logits.joint, logits.marginal[..., 0], ranks=ranks)

    def logits(
        self, forward: Forward, theta: Tensor, x: Tensor, permutation: Tensor | None = None, draws: Tensor | None = None
    ) -> Logits:
        partners = torch.cat([self.marginal_theta(theta, permutation).unsqueeze(-2), draws], dim=-2)
        return self.ranked(forward(theta, x, partners), theta, draws)

    def validation_logits(self, forward: Forward, theta: Tensor, x: Tensor, theta_marginal: Tensor) -> Logits:
        return self.ranked(forward(theta, x, theta_marginal), theta, theta_marginal[..., 1:, :])

    def describe(self) -> str:
        c = self.config
        form = "calibrated" if c.dcp_calibration else "conservative"
        draws = f"{c.dcp_samples} prior draws per pair{self.step_note()}"
        return f"CalNRE ({form}, lambda={self.regulariser_weight()}, {draws})"


class CalNPE(Calibrated, NPE):
    r"""NPE with the DCP regulariser: the ranks from the flow's own reparameterised draws."""

    name = "calnpe"
    default_lambda = 1.0

    def sample(self, n: int, rng) -> Tensor:
        if self.task is None:
            raise ValueError("calnpe needs the task's dimension: build the method with its task (get_method(config, task))")
        return torch.as_tensor(rng.standard_normal((n, self.config.dcp_samples, self.task.prior.dim)),
                               dtype=torch.float32)

    def ranked(self, logits: Logits) -> Logits:
        log_q = logits.joint + logits.log_prior
        ranks = rank_statistics(log_q, logits.sampled, log_space=self.log_space())
        return logits._replace(sampled=None, ranks=ranks)

    def logits(
        self, forward: Forward, theta: Tensor, x: Tensor, permutation: Tensor | None = None, draws: Tensor | None = None
    ) -> Logits:
        logits = forward(theta, x, theta.unsqueeze(-2)[..., :0, :], draws)  # no partners: (..., B, 0, D)
        return self.ranked(logits._replace(marginal=logits.marginal.flatten(-2)))

    def validation_logits(self, forward: Forward, theta: Tensor, x: Tensor, theta_marginal: Tensor) -> Logits:
        return self.ranked(forward(theta, x, theta_marginal[..., 0, :], theta_marginal[..., 1:, :]))

    def describe(self) -> str:
        c = self.config
        form = "calibrated" if c.dcp_calibration else "conservative"
        draws = f"{c.dcp_samples} draws per pair{self.step_note()}"
        return f"CalNPE ({c.flow.upper()}, {form}, lambda={self.regulariser_weight()}, {draws})"
