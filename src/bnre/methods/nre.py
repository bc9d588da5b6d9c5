r"""Neural ratio estimation (NRE) and balanced NRE (BNRE, Delaunoy et al. 2022)."""

from __future__ import annotations

from .base import Balanced, Method


class NRE(Method):
    r"""Neural ratio estimation: the binary cross-entropy of joint against marginal pairs."""

    name = "nre"


class BNRE(Balanced, NRE):
    r"""Balanced NRE: NRE's loss plus :math:`\lambda (\mathbb{E}_{joint}[d] + \mathbb{E}_{marginal}[d] - 1)^2`."""

    name = "bnre"

    def describe(self) -> str:
        return f"BNRE (lambda={self.config.lmbda}, {self.config.bce} of the cross-entropies)"
