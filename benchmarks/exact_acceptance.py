"""Acceptance of the posterior grids on exact posteriors, whose ranks are uniform by construction.

Run from the repository root::

    python benchmarks/exact_acceptance.py [--pairs 2000] [--seed 1] [--tasks gaussian slcp ...]
    python benchmarks/exact_acceptance.py --quick        # 50 pairs: a check that it runs (minutes)
    python benchmarks/exact_acceptance.py --adaptive-only # the adaptive grid alone (the uniform SLCP run is the slowest)

The exact posterior is calibrated: the HPD rank of the true parameters of pairs
:math:`(\\theta^*, x^*) \\sim p(\\theta, x)` is uniform on [0, 1]. Ranks of the exact
posterior that are not uniform are the grid's fault (its cells too coarse where the
rank is decided). For each task with a tractable likelihood, ``gaussian``, ``slcp``,
``two_moons``, ``weinberg``, the plugin ``examples/oscillator/task.py:DampedOscillator``
(a non-uniform prior) and ``gaussian_narrow`` (``bnre.tasks.Gaussian(sigma=0.001)``, a
posterior far narrower than a uniform cell) and ``gaussian_3d`` (``Gaussian(dim=3,
sigma=0.05)``, narrower than a cell of the uniform 32³ grid), on ``--pairs`` simulated test pairs
(``bnre.simulation.simulate.simulate_range(task, "test", seed, 0, pairs)``),
``bnre.evaluation.diagnostics.evaluate_exact`` runs on the adaptive grid (``Refinement()``'s
defaults) and on the uniform grid of 90 bins per dimension in 1-D and 2-D (32 in 3-D).
Reported per task and grid:

* the KS p-value of the ranks against U(0, 1) (``scipy.stats.kstest``);
* the coverage at level 0.01, P(rank < 0.01), and its binomial 99% band for a calibrated
  posterior, the 0.5% and 99.5% quantiles of Binomial(N, 0.01) / N;
* the AUC, 0.5 - mean rank, and its band ±2.58·sqrt(1/(12N));
* the fraction of ranks exactly 0, the fraction unresolved (``unresolved_fraction``),
  density evaluations per pair (``grid_evaluations``) and seconds.

A grid passes on a task when the KS p-value is at least 0.01 and the coverage at 0.01
and the AUC lie inside their bands. Prints one line per task and grid, the count for the
uniform grid, and ends with ``exact_acceptance passed=<k>/<n>``: the tasks of the
adaptive grid that pass, of those run.
"""

from __future__ import annotations

import argparse
import math
import time

from common import ROOT, device_name

import numpy as np
import torch
from scipy.stats import binom, kstest

from bnre.evaluation.adaptive import Refinement
from bnre.evaluation.coverage import grid_bins
from bnre.evaluation.diagnostics import evaluate_exact
from bnre.evaluation.grids import UniformGrid
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian, get_task

TASKS = ("gaussian", "slcp", "two_moons", "weinberg", "oscillator", "gaussian_narrow", "gaussian_3d")
LEVEL = 0.01
Z99 = 2.58
KS_ALPHA = 0.01


def make_task(name: str):
    if name == "oscillator":
        return get_task(f"{ROOT / 'examples' / 'oscillator' / 'task.py'}:DampedOscillator")
    if name == "gaussian_narrow":
        return Gaussian(sigma=0.001)
    if name == "gaussian_3d":
        return Gaussian(dim=3, sigma=0.05)
    return get_task(name)


def verdict(ranks: np.ndarray) -> dict:
    n = len(ranks)
    coverage = float((ranks < LEVEL).mean())
    band = (binom.ppf(0.005, n, LEVEL) / n, binom.ppf(0.995, n, LEVEL) / n)
    auc = float(0.5 - ranks.mean())
    half = Z99 * math.sqrt(1 / (12 * n))
    p = float(kstest(ranks, "uniform").pvalue)
    passed = p >= KS_ALPHA and band[0] <= coverage <= band[1] and abs(auc) <= half
    return dict(p=p, coverage=coverage, band=band, auc=auc, half=half, zero=float((ranks == 0).mean()), passed=passed)


def run(task, theta, x, spec, bins: int, device: str) -> dict:
    start = time.perf_counter()
    result = evaluate_exact(task, theta, x, bins, device=device, grid_spec=spec)
    seconds = time.perf_counter() - start
    pairs = result.pairs
    ranks = pairs.loc[pairs.replicate == "ensemble", "rank"].to_numpy(np.float64)
    m = result.metrics.set_index(["replicate", "metric"]).value
    return dict(
        verdict(ranks),
        unresolved=float(m[("ensemble", "unresolved_fraction")]),
        evaluations=float(m[("ensemble", "grid_evaluations")]),
        seconds=seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--quick", action="store_true", help="50 pairs: a check that the script runs")
    parser.add_argument("--adaptive-only", action="store_true", help="skip the uniform grid (its SLCP run is the slowest)")
    args = parser.parse_args()
    if args.quick:
        args.pairs = min(args.pairs, 50)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = Refinement()
    print(f"device: {device_name()}; {args.pairs} test pairs (seed {args.seed}); adaptive grid {spec}; "
          f"pass: KS p >= {KS_ALPHA}, coverage at {LEVEL} and AUC inside their 99% bands")
    print(f"{'task':16s} {'grid':14s} {'KS p':>8s} {'cov@0.01':>9s} {'band':>15s} {'AUC':>8s} {'band':>8s} "
          f"{'rank=0':>7s} {'unres.':>7s} {'evals':>7s} {'s':>6s}  verdict")
    passed = {"adaptive": 0, "uniform": 0}
    for name in args.tasks:
        task = make_task(name)
        theta, x = simulate_range(task, "test", args.seed, 0, args.pairs)
        bins = grid_bins(90, task.theta_dim, 2**15)
        grids = (("adaptive", spec), (f"uniform {bins}^{task.theta_dim}", UniformGrid(bins)))
        for grid_name, grid_spec in grids if not args.adaptive_only else grids[:1]:
            r = run(task, theta, x, grid_spec, bins, device)
            passed[grid_name.split()[0]] += r["passed"]
            band = f"[{r['band'][0]:.4f},{r['band'][1]:.4f}]"
            print(f"{name:16s} {grid_name:14s} {r['p']:8.2e} {r['coverage']:9.4f} {band:>15s} {r['auc']:+8.4f} "
                  f"{'±' + format(r['half'], '.4f'):>8s} {r['zero']:7.1%} {r['unresolved']:7.1%} {r['evaluations']:7.0f} "
                  f"{r['seconds']:6.1f}  {'pass' if r['passed'] else 'FAIL'}", flush=True)
    if not args.adaptive_only:
        print(f"uniform grid: passed={passed['uniform']}/{len(args.tasks)}")
    print(f"exact_acceptance passed={passed['adaptive']}/{len(args.tasks)}")


if __name__ == "__main__":
    main()
