"""The six methods side by side (docs/results.md), from a study's summary.csv.

    python docs/results/methods/table.py docs/results/methods/summary.csv

Per task and budget, per method (ensemble, and members mean ± sd): coverage AUC (with the
half-width of its 95% binomial band, 1.96 / sqrt(12 N), the spread of a calibrated
posterior's AUC on N pairs), expected log posterior, its gap to the method's unbalanced
counterpart (BNRE to NRE, BNRE-C to NRE-C, BNPE to NPE), to the prior and to the exact
posterior, balancing (of the implied classifier for NPE and BNPE), the distance to the
exact posterior (KL) and the kept epoch.
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cells import cells  # noqa: E402  (docs/results/cells.py)

ORDER = ["nre", "bnre", "cnre", "bnre_c", "npe", "bnpe"]
UNBALANCED = {"bnre": "nre", "bnre_c": "cnre", "bnpe": "npe"}


def main(path: str) -> None:
    for cell in cells(path):
        task, budget, b, ens, mem, n, prior, exact = cell
        exact_auc = ens.coverage_auc.get("exact", float("nan"))
        print(f"\n**{task}, budget {budget}** (N = {n:.0f} pairs: AUC band ±{cell.band:.3f}; "
              f"prior {prior:.2f}; exact posterior on the grid {exact:.2f}, AUC {exact_auc:+.3f})\n")
        print("| method | AUC ensemble | AUC members | log post. ensemble | − unbalanced | − prior | − exact "
              "| members | balancing | KL to exact | kept epoch |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for m in [m for m in ORDER if m in ens.index] + sorted(set(ens.index) - set(ORDER) - {"exact"}):
            ref = UNBALANCED.get(m)
            gap = ens.log_posterior[m] - ens.log_posterior[ref] if ref in ens.index else float("nan")
            auc_m, lp_m = mem.loc[(m, "coverage_auc")], mem.loc[(m, "log_posterior")]
            kl = ens.kl_exact[m] if "kl_exact" in ens.columns else float("nan")
            gap_text = "" if math.isnan(gap) else f"{gap:+.2f}"
            print(f"| {m} | {ens.coverage_auc[m]:+.3f} | {auc_m['mean']:+.3f} ± {auc_m['std']:.3f} | "
                  f"{ens.log_posterior[m]:.2f} | {gap_text} | {ens.log_posterior[m] - prior:+.2f} | "
                  f"{ens.log_posterior[m] - exact:+.2f} | {lp_m['mean']:.2f} ± {lp_m['std']:.2f} | "
                  f"{ens.balancing[m]:.3f} | {kl:.3f} | {mem.loc[(m, 'kept_epoch')]['mean']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
