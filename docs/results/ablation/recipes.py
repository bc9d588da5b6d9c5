"""The ablation's recipes side by side (docs/results.md), from its summary.csv.

    python docs/results/ablation/recipes.py docs/results/ablation/summary.csv docs/results/ablation

One figure per metric (``recipes_coverage_auc.png``, ``recipes_log_posterior.png``): a
row per recipe, a panel per task and budget; dots are the members, a cross their
ensemble. For coverage AUC, the grey band is the 95% spread of a calibrated posterior's
AUC on the test pairs (±1.96 / sqrt(12 N)) about the exact posterior's AUC on the same
grid (dashed), which is where a calibrated estimator lands on this grid. For the log
posterior, the dashed line is the exact posterior's, the dotted one the prior's.
"""

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from table import ORDER  # noqa: E402

COLOURS = {"nre": "#d95f02", "bnre": "#1b9e77"}


def draw(summary: pd.DataFrame, metric: str, xlabel: str, path: Path) -> None:
    cells = sorted({(t, b) for t, b in zip(summary.task, summary.budget)})
    present = set(summary.method) - {"exact"}
    recipes = [m for m in ORDER if m in present] + sorted(present - set(ORDER))
    fig, axes = plt.subplots(1, len(cells), figsize=(3.6 * len(cells), 0.28 * len(recipes) + 1.2), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, (task, budget) in zip(axes[0], cells):
        cell = summary[(summary.task == task) & (summary.budget == budget)]
        values = cell[cell.metric == metric]
        exact = values[values.method == "exact"].value
        if len(exact):
            ax.axvline(exact.iloc[0], color="black", linestyle="--", linewidth=1, label="exact posterior")
            if metric == "coverage_auc":
                n = cell[(cell.metric == "test_pairs")].value.iloc[0]
                band = 1.96 / math.sqrt(12 * n)
                ax.axvspan(exact.iloc[0] - band, exact.iloc[0] + band, color="grey", alpha=0.2, linewidth=0)
        if metric == "log_posterior":
            ax.axvline(cell[cell.metric == "log_prior"].value.iloc[0], color="grey", linestyle=":", label="prior")
        for row, recipe in enumerate(recipes):
            colour = COLOURS["bnre" if recipe.startswith("bnre") else "nre"]
            sub = values[values.method == recipe]
            members = sub[sub.replicate != "ensemble"].value
            ensemble = sub[sub.replicate == "ensemble"].value
            ax.scatter(members, [row] * len(members), color=colour, s=12, alpha=0.7)
            ax.scatter(ensemble, [row] * len(ensemble), color=colour, marker="x", s=40)
        ax.set_yticks(range(len(recipes)), recipes, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{task}, budget {budget}", fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(summary_path: str, outdir: str) -> None:
    summary = pd.read_csv(summary_path, dtype={"replicate": str})
    draw(summary, "coverage_auc", "coverage AUC (dots: members, x: ensemble)", Path(outdir) / "recipes_coverage_auc.png")
    draw(summary, "log_posterior", "expected log posterior", Path(outdir) / "recipes_log_posterior.png")


if __name__ == "__main__":
    main(*sys.argv[1:3])
