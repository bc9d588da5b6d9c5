"""Merge a study's tidy tables into the committed ones, cell by cell.

    python docs/results/ablation/merge.py STUDY OUT TABLE:CELL_FILE ...

For each ``TABLE:CELL_FILE`` (e.g. ``summary:metrics``), the study's per-cell files
``STUDY/results/*/*/*/CELL_FILE.csv`` are concatenated, and the cells (task, method,
budget) they hold replace the committed ones in ``OUT/TABLE.csv``; the other committed
cells stay. So passes run in separate directories and sessions (the 2^10 and the 2^13
ones) add up to one table. Each table is written atomically.
"""

import sys
import tempfile
from pathlib import Path

import pandas as pd

from bnre.io import atomic_path
from bnre.results.aggregate import concatenate

KEY = ["task", "method", "budget"]


def merge(committed: Path, fresh: pd.DataFrame) -> None:
    if committed.is_file():
        old = pd.read_csv(committed, dtype={"replicate": str})
        cells = pd.MultiIndex.from_frame(fresh[KEY].drop_duplicates())
        old = old[~pd.MultiIndex.from_frame(old[KEY]).isin(cells)]
        fresh = pd.concat([old, fresh], ignore_index=True)
    fresh = fresh.sort_values(KEY, kind="stable")
    with atomic_path(committed) as tmp:
        fresh.to_csv(tmp, index=False)
    print(f"{committed}: {len(fresh[KEY].drop_duplicates())} cells")


def main(study: str, out: str, *tables: str) -> None:
    for table in tables:
        name, cell_file = table.split(":")
        paths = sorted(Path(study).glob(f"results/*/*/*/{cell_file}.csv"))
        with tempfile.TemporaryDirectory() as scratch:  # concatenate writes its table to a file
            fresh = concatenate(paths, Path(scratch) / f"{name}.csv")
        merge(Path(out) / f"{name}.csv", fresh)


if __name__ == "__main__":
    main(*sys.argv[1:])
