"""The paired amp-versus-float32 table of the config/amp.yaml study (issue 19).

    python docs/results/amp/table.py docs/results/amp > docs/results/amp/tables.md

Reads ``summary.csv`` and ``history_<method>.csv`` (collect.sh copies them from a study).
Per method: the members' validation loss at their kept epoch, the kept epoch, the median
seconds of an epoch while all members train (the stacked ensemble, validation included),
and the members' and the ensemble's coverage AUC and expected log posterior.
"""

import sys
from pathlib import Path

import pandas as pd

METHODS = ("nre", "nre_amp", "bnre", "bnre_amp")


def training(history: pd.DataFrame) -> dict:
    kept = history[history.kept.astype(str) == "True"]
    epochs = history.groupby("epoch").agg(seconds=("seconds", "first"), active=("member", "nunique"))
    stacked = epochs[epochs.active == history.member.nunique()].seconds.iloc[1:]  # the first pays warm-up
    return {"val_loss": kept.val_loss.mean(), "val_sd": kept.val_loss.std(), "kept_epoch": kept.epoch.mean(),
            "s_per_epoch": stacked.median(), "epochs": history.epoch.max()}


def evaluation(summary: pd.DataFrame, method: str, metric: str, fmt: str) -> dict:
    values = summary[(summary.method == method) & (summary.metric == metric)]
    members = values[values.replicate != "ensemble"].value
    ensemble = values[values.replicate == "ensemble"].value.iloc[0]
    return {f"{metric} members": f"{members.mean():{fmt}} ± {members.std():.3f}", f"{metric} ensemble": f"{ensemble:{fmt}}"}


def main(directory: Path) -> None:
    summary = pd.read_csv(directory / "summary.csv")
    rows = [
        {"method": m, **training(pd.read_csv(directory / f"history_{m}.csv")),
         **evaluation(summary, m, "coverage_auc", "+.3f"), **evaluation(summary, m, "log_posterior", ".3f")}
        for m in METHODS
    ]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
