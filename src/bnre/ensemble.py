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

from .coverage import GRID_BATCH, GRID_BATCH_CUDA
from .nn import ConditionalEstimator


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
        self.names = [str(k) for k in range(len(self.members))]
        if len(self.members) > 1:
            self.names.append("ensemble")

    def __len__(self) -> int:
        """Rows of the outputs: the members, and the ensemble when there are several."""
        return len(self.names)

    def log_ratio(self, theta: Tensor, rows: slice) -> Tensor:
        """Log-ratios (K [+ 1], n, G) of observations ``rows`` at ``theta`` (n or 1, G, D)."""
        n = rows.stop - rows.start
        step = max(1, self.rows // n)
        log_r = torch.stack(
            [
                torch.cat(
                    [m.head_log_ratio(theta[:, a : a + step], e[rows, None, :]) for a in range(0, theta.shape[1], step)],
                    dim=-1,
                )
                for m, e in zip(self.members, self.embeddings)
            ]
        )
        if len(self.members) == 1:
            return log_r
        return torch.cat([log_r, ensemble_log_ratio(log_r)])
