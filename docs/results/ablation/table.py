"""The ablation's table (docs/results.md) from its summary.csv.

    python docs/results/ablation/table.py docs/results/ablation/summary.csv

Per task and method (ensemble, and members mean ± sd): coverage AUC with the half-width
of its 95% binomial band (1.96 / sqrt(12 N), the spread of a calibrated posterior's AUC
on N pairs), expected log posterior, its gap to NRE under the same protocol (nre for the
authors' recipes, nre_today for bnre_today) and to the prior, balancing, kept epoch.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cells import cells  # noqa: E402  (docs/results/cells.py)

CHANGES = ["last", "roll", "early", "wd", "sched", "norm", "valset"]
ORDER = (["nre"] + [f"nre_{c}" for c in CHANGES] + ["bnre", "bnre_unbiased", "bnre_mean"]
         + [f"bnre_{c}" for c in CHANGES] + ["nre_today", "bnre_today"])


def main(path: str) -> None:
    for cell in cells(path):
        task, budget, b, ens, mem, n, prior, exact = cell
        print(f"\n{task}, budget {budget} (N = {n:.0f} pairs: AUC band ±{cell.band:.3f}; prior {prior:.2f})\n")
        print("| method | AUC ensemble | AUC members | each member | log post. ensemble | − NRE | − prior "
              "| − exact | members | balancing | kept epoch |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        if "exact" in ens.index:
            print(f"| exact posterior (grid) | {ens.coverage_auc['exact']:+.3f} | | | {exact:.2f} | | "
                  f"{exact - prior:+.2f} | | | | |")
        estimators = [m for m in ens.index if m != "exact"]
        for m in [m for m in ORDER if m in estimators] + sorted(set(estimators) - set(ORDER)):
            ref = "nre_today" if m.endswith("_today") else "nre"
            gap = ens.log_posterior[m] - ens.log_posterior[ref] if ref in ens.index else float("nan")
            auc_m, lp_m = mem.loc[(m, "coverage_auc")], mem.loc[(m, "log_posterior")]
            each = b[(b.method == m) & (b.replicate != "ensemble") & (b.metric == "coverage_auc")]
            each = ", ".join(f"{v:+.3f}" for v in each.sort_values("replicate").value)
            print(f"| {m} | {ens.coverage_auc[m]:+.3f} | {auc_m['mean']:+.3f} ± {auc_m['std']:.3f} | {each} | "
                  f"{ens.log_posterior[m]:.2f} | {gap:+.2f} | {ens.log_posterior[m] - prior:+.2f} | "
                  f"{ens.log_posterior[m] - exact:+.2f} | {lp_m['mean']:.2f} ± {lp_m['std']:.2f} | "
                  f"{ens.balancing[m]:.3f} | {mem.loc[(m, 'kept_epoch')]['mean']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
