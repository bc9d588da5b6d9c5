"""How methods are named and ordered in tables and figures."""

from __future__ import annotations

from typing import Iterable

#: Display names of the methods; a variant is shown under its own name. ``exact`` is the
#: exact posterior of a tractable task on the same grid (the reference).
LABELS = {"nre": "NRE", "bnre": "BNRE", "cnre": "NRE-C", "bnre_c": "BNRE-C", "npe": "NPE", "bnpe": "BNPE",
          "calnre": "CalNRE", "calnpe": "CalNPE", "exact": "exact posterior"}

#: The methods, shown first in this order (each unbalanced one before its balanced form, the
#: calibration-regularised ones last); the variants follow by name, then the exact posterior.
FIRST = ("nre", "bnre", "cnre", "bnre_c", "npe", "bnpe", "calnre", "calnpe")


def ordered_methods(names: Iterable[str]) -> list[str]:
    """The methods in :data:`FIRST` order, then the variants by name, then the exact posterior."""
    present = set(names)
    rest = sorted(present - set(FIRST) - {"exact"})
    return [m for m in FIRST if m in present] + rest + (["exact"] if "exact" in present else [])


def label(method: str) -> str:
    return LABELS.get(method, method)
