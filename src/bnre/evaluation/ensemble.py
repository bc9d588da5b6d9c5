r"""Trained ratio estimators and their ensemble, evaluated together.

The ensemble of :math:`K` members averages their ratios (the paper's ``ratio_mean``):

.. math:: \log \hat r_{ens}(\theta, x) = \log \frac1K \sum_k \hat r_k(\theta, x)
    = \operatorname{logsumexp}_k \log \hat r_k(\theta, x) - \log K .

Each observation is embedded once per member; only the heads are evaluated at the
parameters asked for.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ..nets.estimators import ConditionalEstimator
from .coverage import GRID_BATCH, GRID_BATCH_CUDA
from .low_precision_head import LowPrecisionHead


def ensemble_log_ratio(log_ratios: Tensor) -> Tensor:
    r"""Log of the members' mean ratio from their log-ratios (K, ...): (1, ...)."""
    return torch.logsumexp(log_ratios, dim=0, keepdim=True) - math.log(len(log_ratios))


class Ensemble:
    r"""The members of an ensemble and the ensemble itself, on observations ``x``.

    Row :math:`k < K` of every output is member :math:`k`; with :math:`K > 1` members the
    last row is the ensemble. With one member the ensemble is that member and is not
    computed twice. Members need ``embed(x)`` and ``head_log_ratio(theta, embedding)``.
    """

    def __init__(self, members: Sequence[ConditionalEstimator], x: Tensor):
        self.members = [m.to(x.device) for m in members]
        self.rows = GRID_BATCH_CUDA if x.device.type == "cuda" else GRID_BATCH
        # embed in chunks: a CNN's activations on all test observations may not fit
        self.embeddings = torch.stack(
            [torch.cat([m.embed(x[a : a + 1024]) for a in range(0, len(x), 1024)]) for m in self.members]
        )  # (K, N, E)
        self._low: list[LowPrecisionHead] | None = None
        self.names = [str(k) for k in range(len(self.members))]
        if len(self.members) > 1:
            self.names.append("ensemble")

    def __len__(self) -> int:
        """Rows of the outputs: the members, and the ensemble when there are several."""
        return len(self.names)

    def log_ratio(self, theta: Tensor, rows: slice, low_precision: bool = False) -> Tensor:
        """Log-ratios (K [+ 1], n, G) of observations ``rows`` at ``theta`` (n or 1, G, D);
        with ``low_precision``, from the heads' bf16 form (:meth:`low_precision_heads`)."""
        n = rows.stop - rows.start
        step = max(1, self.rows // n)
        heads = self.low_precision_heads() if low_precision else [m.head_log_ratio for m in self.members]
        log_r = torch.stack(
            [
                torch.cat(
                    [head(theta[:, a : a + step], e[rows, None, :]) for a in range(0, theta.shape[1], step)],
                    dim=-1,
                )
                for head, e in zip(heads, self.embeddings)
            ]
        )
        return self._with_ensemble(log_r)

    def log_ratio_at(self, theta: Tensor, obs: Tensor) -> Tensor:
        """Log-ratios (K [+ 1], P) at pairs of parameters ``theta`` (P, D) and observation
        indices ``obs`` (P,)."""
        log_r = torch.stack(
            [
                torch.cat(
                    [m.head_log_ratio(theta[a : a + self.rows], e[obs[a : a + self.rows]]) for a in range(0, len(obs), self.rows)]
                    or [theta.new_zeros(0)]
                )
                for m, e in zip(self.members, self.embeddings)
            ]
        )
        return self._with_ensemble(log_r)

    def supports_low_precision(self) -> bool:
        """Whether every member's head has a bf16 form (:class:`~bnre.evaluation.low_precision_head.LowPrecisionHead`)."""
        return all(LowPrecisionHead.applies(m) for m in self.members)

    def low_precision_heads(self) -> list[LowPrecisionHead]:
        """The members' heads with bf16 hidden layers, built once."""
        if self._low is None:
            self._low = [LowPrecisionHead(m) for m in self.members]
        return self._low

    def _with_ensemble(self, log_r: Tensor) -> Tensor:
        if len(self.members) == 1:
            return log_r
        return torch.cat([log_r, ensemble_log_ratio(log_r)])
