"""How methods are named and ordered in tables and figures."""

from __future__ import annotations

from typing import Iterable

#: Display names of the methods; a variant is shown under its own name. ``exact`` is the
#: exact posterior of a tractable task on the same grid (the reference).
LABELS = {"nre": "NRE", "bnre": "BNRE", "exact": "exact posterior"}

#: Shown first, in this order; the variants follow by name, then the exact posterior.
FIRST = ("nre", "bnre")


def ordered_methods(names: Iterable[str]) -> list[str]:
    """NRE and BNRE first, then the variants by name, then the exact posterior."""
    present = set(names)
    rest = sorted(present - set(FIRST) - {"exact"})
    return [m for m in FIRST if m in present] + rest + (["exact"] if "exact" in present else [])


def label(method: str) -> str:
    return LABELS.get(method, method)
