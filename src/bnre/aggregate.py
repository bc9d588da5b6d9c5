"""Aggregation of per-model evaluation tables into tidy result tables."""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd

from .io import atomic_path

KEYS = ["task", "method", "budget", "replicate"]


def concatenate(paths: Sequence[str | os.PathLike], output: str | os.PathLike) -> pd.DataFrame:
    """Concatenate tidy CSV tables (same columns) into ``output``, sorted by their keys."""
    if not paths:
        raise ValueError("no tables to aggregate")
    table = pd.concat([pd.read_csv(p, dtype={"replicate": str}) for p in paths], ignore_index=True)
    order = [c for c in KEYS + ["metric", "level"] if c in table.columns]
    table = table.sort_values(order, kind="stable").reset_index(drop=True)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    return table
