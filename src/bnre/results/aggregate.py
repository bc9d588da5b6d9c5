"""Aggregation of per-model evaluation tables into tidy result tables."""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd

from ..io import atomic_path

KEYS = ["task", "seed", "method", "budget", "replicate"]


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


def read_histories(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Training histories (model files' ``.history.csv``) as one table; each names its own
    task, seed, method and budget in its first columns."""
    tables = []
    for path in paths:
        table = pd.read_csv(path)
        missing = [key for key in ("task", "method", "budget") if key not in table.columns]
        if missing:
            raise ValueError(f"{path}: history without the columns {missing} (written by an older version: retrain)")
        tables.append(table)
    if not tables:
        raise ValueError("no training histories given")
    return pd.concat(tables, ignore_index=True)
