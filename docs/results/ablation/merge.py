"""Merge a study's tidy table into the committed one, cell by cell.

    python docs/results/ablation/merge.py COMMITTED.csv NEW.csv

The cells (task, method, budget) that NEW.csv holds replace the committed ones; the other
committed cells stay. So passes run in separate directories and sessions (the 2^10 and
the 2^13 ones) add up to one table. The result is written atomically over COMMITTED.csv.
"""

import os
import sys
from pathlib import Path

import pandas as pd

KEY = ["task", "method", "budget"]


def main(committed: str, new: str) -> None:
    fresh = pd.read_csv(new, dtype={"replicate": str})
    if Path(committed).is_file():
        old = pd.read_csv(committed, dtype={"replicate": str})
        cells = pd.MultiIndex.from_frame(fresh[KEY].drop_duplicates())
        old = old[~pd.MultiIndex.from_frame(old[KEY]).isin(cells)]
        fresh = pd.concat([old, fresh], ignore_index=True)
    fresh = fresh.sort_values(KEY, kind="stable")
    tmp = f"{committed}.tmp"
    fresh.to_csv(tmp, index=False)
    os.replace(tmp, committed)
    print(f"{committed}: {len(fresh[KEY].drop_duplicates())} cells")


if __name__ == "__main__":
    main(*sys.argv[1:])
