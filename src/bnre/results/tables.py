"""Markdown tables of a summary: coverage AUC and expected log posterior per budget."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import label, ordered_methods


def _cell(values: pd.Series) -> str:
    if len(values) == 0:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:+.3f}"
    return f"{values.mean():+.3f} ± {values.std(ddof=1):.3f}"


def metric_table(summary: pd.DataFrame, task: str, metric: str) -> str:
    """Rows: budgets; columns: each method's members (mean ± sd) and ensemble (of each
    root seed: mean ± sd across seeds)."""
    data = summary[(summary.task == task) & (summary.metric == metric)]
    methods = ordered_methods(data.method)
    header = ["budget"] + [f"{label(m)} {kind}" for m in methods for kind in ("members", "ensemble")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for budget in sorted(data.budget.unique()):
        row = [f"2^{int(np.log2(budget))}" if np.log2(budget).is_integer() else str(budget)]
        for method in methods:
            sub = data[(data.budget == budget) & (data.method == method)]
            row.append(_cell(sub[sub.replicate != "ensemble"].value))
            row.append(_cell(sub[sub.replicate == "ensemble"].value))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def summary_markdown(summary: pd.DataFrame) -> str:
    """Per task: the coverage AUC table and the expected log posterior table. With several
    root seeds, a cell pools the seeds' members (or their ensembles): mean ± sd."""
    parts = []
    if "seed" in summary.columns and summary.seed.nunique() > 1:
        seeds = ", ".join(str(s) for s in sorted(summary.seed.unique()))
        parts.append(f"Root seeds {seeds}: each cell pools every seed's members, or their ensembles (mean ± sd).\n")
    for task in sorted(summary.task.unique()):
        prior = summary[(summary.task == task) & (summary.metric == "log_prior")].value
        parts.append(f"### {task}\n")
        parts.append("Coverage AUC (> 0 conservative, < 0 overconfident):\n")
        parts.append(metric_table(summary, task, "coverage_auc") + "\n")
        parts.append(f"Expected log posterior density (prior: {prior.iloc[0]:.2f}):\n" if len(prior) else "Expected log posterior density:\n")
        parts.append(metric_table(summary, task, "log_posterior") + "\n")
        parts.append("Balancing value (ideal 1):\n")
        parts.append(metric_table(summary, task, "balancing") + "\n")
    return "\n".join(parts)
