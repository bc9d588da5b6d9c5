"""The exact posterior's acceptance on a study's test pairs, one markdown row per task and grid.

    python docs/results/grid/exact_table.py LABEL=STUDY [LABEL=STUDY ...] [--tasks slcp two_moons ...]

Each ``STUDY`` is a workflow directory whose ``results/{task}/exact/all/`` holds the exact
posterior's ``metrics.csv``, ``coverage.csv`` and ``ranks.csv`` (rule ``evaluate_exact``),
or a directory of files ``{task}_{LABEL}.metrics.csv``, ``.coverage.csv`` and
``.ranks.csv``. Per task: the coverage AUC, the coverage at level 0.01, the fraction of
ranks exactly 0, the KS p-value of the ranks against U(0, 1) (where ranks are given), the
unresolved fraction, density evaluations per pair and the expected log posterior. A
calibrated posterior has coverage 0.01 at level 0.01 and an AUC within ±2.58 / sqrt(12 N)
of 0 (99%).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy.stats import kstest

TASKS = ["gaussian", "slcp", "two_moons", "weinberg"]


def files(study: Path, task: str, label: str) -> dict[str, Path]:
    inside = study / "results" / task / "exact" / "all"
    if inside.is_dir():
        return {kind: inside / f"{kind}.csv" for kind in ("metrics", "coverage", "ranks")}
    return {kind: study / f"{task}_{label}.{kind}.csv" for kind in ("metrics", "coverage", "ranks")}


def row(task: str, label: str, study: Path) -> str | None:
    paths = files(study, task, label)
    if not paths["metrics"].is_file():
        return None
    metrics = pd.read_csv(paths["metrics"])
    metrics = metrics[metrics.budget == metrics.budget.min()].set_index("metric").value
    coverage = pd.read_csv(paths["coverage"])
    coverage = coverage[coverage.budget == coverage.budget.min()]
    at = coverage.loc[(coverage.level - 0.01).abs().idxmin(), "coverage"]
    ks, zero = "–", "–"
    if paths["ranks"].is_file():
        ranks = pd.read_csv(paths["ranks"])
        ranks = ranks[ranks.budget == ranks.budget.min()]["rank"]
        ks, zero = f"{kstest(ranks, 'uniform').pvalue:.2g}", f"{(ranks == 0).mean():.3f}"
    return (
        f"| {task} | {label} | {metrics['coverage_auc']:+.3f} | {at:.3f} | {zero} | {ks} "
        f"| {metrics.get('unresolved_fraction', float('nan')):.3f} | {metrics.get('grid_evaluations', float('nan')):.0f} "
        f"| {metrics['log_posterior']:+.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", help="LABEL=DIRECTORY")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    args = parser.parse_args()
    print("| task | grid | AUC | coverage at 0.01 | ranks exactly 0 | KS p of the ranks | unresolved "
          "| evaluations per pair | log posterior |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for entry in args.studies:
            label, _, directory = entry.partition("=")
            line = row(task, label, Path(directory))
            if line:
                print(line)


if __name__ == "__main__":
    main()
