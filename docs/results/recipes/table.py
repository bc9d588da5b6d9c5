"""Issue 33's study: does each recommendation of the ablation hold across root seeds?

Reads the summary tables of config/recipes.yaml and config/recipes_8192.yaml (each cell's
per-seed member mean, and its ensemble), and prints, per task and budget, each recipe's
coverage AUC and expected log posterior as mean ± sd across seeds, beside the exact
posterior; then each recommendation's effect (variant minus our default recipe, per
seed) and whether its sign is the same for every seed.

    python docs/results/recipes/table.py studies/recipes/results/summary.csv \
        studies/recipes_8192/results/summary.csv > docs/results/recipes/tables.md
"""

import sys

import pandas as pd

METRICS = {"coverage_auc": "coverage AUC", "log_posterior": "log posterior"}
#: recommendation -> (variant suffix, what it undoes)
EFFECTS = {"_permute": "permute marginals instead of roll", "_f01": "scheduler x0.1 instead of x0.5"}


def per_seed(summary: pd.DataFrame) -> pd.DataFrame:
    """One value per (task, budget, method, seed, metric, kind): the members' mean, and the ensemble."""
    summary = summary[summary.metric.isin(list(METRICS))]
    members = summary[summary.replicate != "ensemble"].groupby(["task", "budget", "method", "seed", "metric"]).value.mean()
    ensemble = summary[summary.replicate == "ensemble"].set_index(["task", "budget", "method", "seed", "metric"]).value
    return pd.concat({"members": members, "ensemble": ensemble}, names=["kind"]).reset_index()


def cell(values: pd.Series) -> str:
    return f"{values.mean():+.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():+.3f}"


def main(paths: list[str]) -> None:
    data = per_seed(pd.concat([pd.read_csv(p, dtype={"replicate": str}) for p in paths], ignore_index=True))
    for (task, budget), sub in data.groupby(["task", "budget"]):
        seeds = sorted(sub.seed.unique())
        print(f"### {task}, budget {budget} (seeds {', '.join(map(str, seeds))}; mean ± sd across seeds)\n")
        print("| recipe | " + " | ".join(f"{METRICS[m]} members | {METRICS[m]} ensemble" for m in METRICS) + " |")
        print("|---|" + "---|---|" * len(METRICS))
        for method in sorted(sub.method.unique(), key=lambda m: (m == "exact", m)):
            row = sub[sub.method == method]
            cells = []
            for metric in METRICS:
                for kind in ("members", "ensemble"):
                    values = row[(row.metric == metric) & (row.kind == kind)].value
                    cells.append(cell(values) if len(values) else "–")
            print(f"| {method} | " + " | ".join(cells) + " |")
        print()
        print("| effect (variant − default, per seed) | " + " | ".join(f"{METRICS[m]} members" for m in METRICS)
              + " | same sign for every seed |")
        print("|---|" + "---|" * len(METRICS) + "---|")
        for base in ("nre", "bnre"):
            for suffix, what in EFFECTS.items():
                variant = base + suffix
                members = sub[sub.kind == "members"].pivot_table(index=["metric", "seed"], columns="method", values="value")
                if variant not in members or base not in members:
                    continue
                cells, signs = [], []
                for metric in METRICS:
                    d = (members.loc[metric][variant] - members.loc[metric][base]).dropna()
                    cells.append(f"{d.mean():+.3f} ± {d.std(ddof=1):.3f} (n={len(d)})" if len(d) > 1 else f"{d.mean():+.3f} (n=1)")
                    holds = "–" if len(d) < 2 else "yes" if (d > 0).all() or (d < 0).all() else "no"
                    signs.append(f"{METRICS[metric]}: {holds}")
                print(f"| {variant}: {what} | " + " | ".join(cells) + f" | {'; '.join(signs)} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
