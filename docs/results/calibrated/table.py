"""Issue 34's study: balancing against the differentiable coverage-probability regulariser.

Reads the study's summary table (``config/laptop.yaml`` + ``config/calibrated.yaml``), or the
per-cell ``metrics.csv`` files of a study still running, and prints, per task and budget:

* each method's coverage AUC and expected log posterior: the members' mean ± sd (3 members)
  and the ensemble, beside the exact posterior where one exists; the members' kept epochs
  against the cap (a member whose kept epoch is the cap may be under-trained);
* the paired effects, member k against member k of the base method (same training pairs):
  each conservative method against its plain one (BNRE and CalNRE against NRE, BNPE and
  CalNPE against NPE), and CalNRE against BNRE, CalNPE against BNPE (the DCP paper's claim:
  as conservative as balancing, at a lower price in log posterior).

Cells that have not run yet are left out (the study resumes across sessions). The exact
posterior's row is shown at every budget of its task.

    python docs/results/calibrated/table.py 500 studies/calibrated/results/summary.csv > docs/results/calibrated/tables.md
    python docs/results/calibrated/table.py 500 studies/calibrated/results/*/seed1/*/*/metrics.csv  # while it runs
"""

import sys

import pandas as pd

METRICS = {"coverage_auc": "coverage AUC", "log_posterior": "log posterior"}
ORDER = ["nre", "bnre", "calnre", "npe", "bnpe", "calnpe", "exact"]
PAIRS = [("bnre", "nre"), ("calnre", "nre"), ("calnre", "bnre"), ("bnpe", "npe"), ("calnpe", "npe"), ("calnpe", "bnpe")]


def cell(values: pd.Series) -> str:
    return f"{values.mean():+.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():+.3f}"


def main(cap: int, paths: list[str]) -> None:
    summary = pd.concat([pd.read_csv(p, dtype={"replicate": str}) for p in paths], ignore_index=True)
    # the exact posterior does not depend on the budget: its rows carry the budgets of the run
    # that evaluated it; shown beside every budget of its task that has an estimator's cell
    exact = summary[summary.method == "exact"].drop(columns="budget").drop_duplicates(["task", "replicate", "metric"])
    budgets = summary[summary.method != "exact"][["task", "budget"]].drop_duplicates()
    summary = pd.concat([summary[summary.method != "exact"], exact.merge(budgets, on="task")], ignore_index=True)
    for (task, budget), sub in summary.groupby(["task", "budget"]):
        methods = [m for m in ORDER if m in set(sub.method)]
        print(f"### {task}, budget {budget}\n")
        print("| method | " + " | ".join(f"{METRICS[m]} members | {METRICS[m]} ensemble" for m in METRICS)
              + " | kept epochs (cap " + str(cap) + ") |")
        print("|---|" + "---|---|" * len(METRICS) + "---|")
        for method in methods:
            rows = sub[sub.method == method]
            cells = []
            for metric in METRICS:
                values = rows[rows.metric == metric]
                members = values[values.replicate != "ensemble"].value
                ensemble = values[values.replicate == "ensemble"].value
                cells += [cell(members) if len(members) else "–", cell(ensemble) if len(ensemble) else "–"]
            kept = rows[(rows.metric == "kept_epoch") & (rows.replicate != "ensemble")].value
            epochs = ", ".join(str(int(e)) for e in sorted(kept)) if len(kept) else "–"
            print(f"| {method} | " + " | ".join(cells) + f" | {epochs} |")
        print()
        members = sub[(sub.replicate != "ensemble") & sub.metric.isin(list(METRICS))]
        table = members.pivot_table(index=["metric", "replicate"], columns="method", values="value")
        lines = []
        for method, base in PAIRS:
            if method not in table or base not in table:
                continue
            cells, signs = [], []
            for metric in METRICS:
                d = (table.loc[metric][method] - table.loc[metric][base]).dropna()
                cells.append(cell(d) + f" (n={len(d)})")
                holds = "yes" if len(d) > 1 and ((d > 0).all() or (d < 0).all()) else "no" if len(d) > 1 else "–"
                signs.append(f"{METRICS[metric]}: {holds}")
            lines.append(f"| {method} − {base} | " + " | ".join(cells) + " | " + "; ".join(signs) + " |")
        if lines:
            print("| paired effect (member k − member k) | " + " | ".join(METRICS.values()) + " | same sign for every member |")
            print("|---|" + "---|" * len(METRICS) + "---|")
            print("\n".join(lines))
            print()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
