"""Adopt cells of another committed study into the methods study's tables.

    python docs/results/methods/adopt.py SOURCE OUT BUDGET STUDY METHOD ...

The six-method study shares NRE and BNRE with the laptop study (config/methods.yaml: same
seeds, data, members' subsets and training), so its 2^13 NRE and BNRE cells are the
laptop study's (docs/results/laptop). For each table (summary, coverage, calibration), the
rows of ``SOURCE`` at ``BUDGET`` for the given methods replace those cells in ``OUT``
(docs/results/ablation/merge.py); the other cells stay. The exact posterior's rows come
with them when ``exact`` is named. Cells that ``STUDY`` ran itself
(``STUDY/results/TASK/METHOD/BUDGET/metrics.csv``) are not adopted: the study's own win.
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ablation"))
from merge import merge  # noqa: E402  (docs/results/ablation/merge.py)

TABLES = ["summary", "coverage", "calibration"]


def read(directory: Path, name: str) -> pd.DataFrame:
    """A committed table, plain or gzipped."""
    for path in (directory / f"{name}.csv", directory / f"{name}.csv.gz"):
        if path.is_file():
            return pd.read_csv(path, dtype={"replicate": str})
    raise FileNotFoundError(f"{directory} holds neither {name}.csv nor {name}.csv.gz")


def ran_itself(study: Path, task: str, method: str, budget: str) -> bool:
    """Whether the study holds this cell's own results. The exact posterior's file is per
    task and labelled with the study's first budget, so its rows at ``budget`` are adopted."""
    return method != "exact" and (study / "results" / task / method / budget / "metrics.csv").is_file()


def main(source: str, out: str, budget: str, study: str, *methods: str) -> None:
    if not methods:
        raise SystemExit("name the methods to adopt, e.g. nre bnre exact")
    for name in TABLES:
        table = read(Path(source), name)
        rows = table[(table.budget.astype(str) == budget) & table.method.isin(methods)]
        missing = set(methods) - set(rows.method)
        if missing:
            raise SystemExit(f"{source}/{name}: no rows at budget {budget} for {sorted(missing)}")
        rows = rows[[not ran_itself(Path(study), t, m, budget) for t, m in zip(rows.task, rows.method)]]
        if len(rows):
            merge(Path(out) / f"{name}.csv", rows)


if __name__ == "__main__":
    main(*sys.argv[1:])
