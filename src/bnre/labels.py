"""How methods are named and ordered in tables and figures."""

from __future__ import annotations

from typing import Iterable

#: Display names of the methods; a variant is shown under its own name.
LABELS = {"nre": "NRE", "bnre": "BNRE"}


def ordered_methods(names: Iterable[str]) -> list[str]:
    """NRE and BNRE first, then the variants by name."""
    present = set(names)
    return [m for m in LABELS if m in present] + sorted(present - set(LABELS))


def label(method: str) -> str:
    return LABELS.get(method, method)
