"""Old (uniform grid) and new (adaptive grid) coverage AUC of the same cells, side by side.

    python docs/results/grid/compare.py OLD_SUMMARY NEW_SUMMARY [--methods nre bnre ...] [--budgets 8192]

Both files are tidy ``summary.csv`` tables of the workflow (task, method, budget,
replicate, metric, value). For every (task, budget, method) cell of NEW that OLD also
holds, one markdown row: the members' mean ± sd and the ensemble's AUC on each grid, their
differences, the fraction of the new grid's ranks that are unresolved (largest over the
rows) and whether the sign of the ensemble's AUC (conservative > 0, overconfident < 0)
changed beyond the band of a calibrated posterior on the test pairs (±1.96 / sqrt(12 N)).
"""

from __future__ import annotations

import argparse
import math

import pandas as pd


def auc(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (task, budget, method): members' mean and sd, ensemble, test pairs."""
    s = summary[summary.metric == "coverage_auc"]
    members = s[s.replicate != "ensemble"].groupby(["task", "budget", "method"]).value.agg(["mean", "std"])
    ensemble = s[s.replicate == "ensemble"].set_index(["task", "budget", "method"]).value.rename("ensemble")
    pairs = summary[summary.metric == "test_pairs"].groupby(["task", "budget", "method"]).value.max().rename("pairs")
    return members.join(ensemble, how="outer").join(pairs)


def unresolved(summary: pd.DataFrame) -> pd.Series:
    s = summary[summary.metric == "unresolved_fraction"]
    return s.groupby(["task", "budget", "method"]).value.max()


def sign(value: float, band: float) -> str:
    if math.isnan(value):
        return "–"
    return "+" if value > band else "−" if value < -band else "0"


def members_text(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:+.3f} ± {sd:.3f}" if not math.isnan(sd) else f"{mean:+.3f}"


def table(old: pd.DataFrame, new: pd.DataFrame, methods: list[str] | None, budgets: list[int] | None) -> str:
    a, b = auc(old), auc(new)
    u = unresolved(new)
    rows = [
        "| task | budget | method | members, uniform | members, adaptive | ensemble, uniform | ensemble, adaptive "
        "| Δ ensemble | unresolved (adaptive) | sign of the ensemble's AUC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in b.index:
        task, budget, method = key
        if key not in a.index or (methods and method not in methods) or (budgets and budget not in budgets):
            continue
        o, n = a.loc[key], b.loc[key]
        pairs = n.pairs if not math.isnan(n.pairs) else o.pairs
        band = 1.96 / math.sqrt(12 * pairs)
        before, after = sign(o.ensemble, band), sign(n.ensemble, band)
        change = f"{before} → {after}" if before != after else f"{after} (same)"
        rows.append(
            f"| {task} | 2^{int(math.log2(budget))} | {method} | {members_text(o['mean'], o['std'])} "
            f"| {members_text(n['mean'], n['std'])} | {o.ensemble:+.3f} | {n.ensemble:+.3f} "
            f"| {n.ensemble - o.ensemble:+.3f} | {u.get(key, float('nan')):.3f} | {change} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--budgets", nargs="+", type=int, default=None)
    args = parser.parse_args()
    def read(path: str) -> pd.DataFrame:
        table = pd.read_csv(path, dtype={"replicate": str})
        return table.drop_duplicates(["task", "method", "budget", "replicate", "metric"], keep="last")

    print(table(read(args.old), read(args.new), args.methods, args.budgets))


if __name__ == "__main__":
    main()
