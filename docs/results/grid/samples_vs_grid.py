"""Do a posterior estimator's own-sample ranks agree with its grid ranks within Monte Carlo error?

    python docs/results/grid/samples_vs_grid.py GRID_RANKS SAMPLE_RANKS DRAWS

GRID_RANKS and SAMPLE_RANKS are `ranks.csv` tables of the same model and pairs
(`evaluate` with the grid, and with `--coverage-method samples --mc-samples DRAWS`). With
S draws, a sample rank is a binomial proportion: if the grid's rank r is right, the
difference d = r_samples - r has standard deviation sqrt(r (1 - r) / S) (at least 1/S).
Prints, per replicate, the mean and largest |d|, the fraction of pairs with |z| > 3 (0.3%
for agreement), the mean of z^2 (1 for agreement), and the AUCs both ways.
"""

import sys

import numpy as np
import pandas as pd

from bnre.evaluation.coverage import coverage_auc


def main(grid_path: str, samples_path: str, draws: int) -> None:
    grid, samples = pd.read_csv(grid_path), pd.read_csv(samples_path)
    key = ["replicate", "pair"]
    for table in (grid, samples):
        table["replicate"] = table["replicate"].astype(str)
    both = grid[key + ["rank"]].merge(samples[key + ["rank"]], on=key, suffixes=("_grid", "_samples"))
    print(f"{grid_path} against {samples_path}: {both.pair.nunique()} pairs, {draws} draws")
    print(f"{'replicate':>10} {'mean|d|':>8} {'max|d|':>8} {'|z|>3':>7} {'mean z^2':>9} {'AUC grid':>9} {'AUC samples':>12}")
    for replicate, rows in both.groupby("replicate"):
        r, s = rows.rank_grid.to_numpy(), rows.rank_samples.to_numpy()
        d = s - r
        sd = np.maximum(np.sqrt(r * (1 - r) / draws), 1 / draws)
        z = d / sd
        auc = [coverage_auc(v) for v in (r, s)]
        print(f"{replicate:>10} {np.abs(d).mean():8.4f} {np.abs(d).max():8.4f} {(np.abs(z) > 3).mean():7.1%} "
              f"{(z**2).mean():9.2f} {auc[0]:+9.3f} {auc[1]:+12.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
