"""Grid coverage in bf16 with float32 refinement (bnre.evaluation.precision) against float32 and lampe.

Run from the repository root::

    python benchmarks/mixed_precision.py [--epochs 20] [--pairs 24]

``benchmarks/evaluation.py`` runs it too, after the float32 comparison, so that one run
compares float32, bf16 and lampe.

For SLCP and M/G/1, NRE ensembles of 2 members (the paper's 6×256 SELU MLP) are trained
at a small and a large budget (``--budgets``); the grid ranks of ``--pairs`` test pairs
(90 bins in 2-D, 32 in 3-D) are computed in float32, on the bf16 path, and with
lampe 0.9's ``expected_coverage_ni`` (float32, member 0). Reported per model: whether this
hardware multiplies bf16 natively, bf16 and float32 matmul GFLOP/s, the fraction of cells
refined, the largest rank difference and the AUC difference against float32, and the
speed-up of each path against lampe. Without native bf16 the bf16 path is emulated and
slower than float32: the accuracy figures still hold, the speed-up does not.

Ends with ``coverage_bf16 speedup_vs_lampe=<x> max_rank_diff=<y> refined_fraction=<z>``
(the smallest speed-up, the largest difference and fraction over the models).
"""

from __future__ import annotations

import argparse
import time

from common import THREADS, matmul_peak

import numpy as np
import torch

from bnre.evaluation.coverage import coverage_auc, grid, grid_bins
from bnre.evaluation.evaluate import coverage_ranks, evaluate
from bnre.evaluation.precision import GridPrecision, bf16_capable
from bnre.methods import get_method
from bnre.methods.config import TrainConfig
from bnre.sampling import member_seed, member_subset
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task
from bnre.training.fit import fit_ensemble


def bf16_matmul_gflops(n: int = 1024) -> float:
    a, b = torch.randn(n, n).bfloat16(), torch.randn(n, n).bfloat16()
    a @ b
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.5:
        a @ b
        calls += 1
    return 2 * n**3 * calls / (time.perf_counter() - start) / 1e9


def trained(task_name: str, budget: int, epochs: int, hidden: list[int] | None = None):
    """An NRE ensemble of 2 members (by default the paper's 6×256 SELU MLP) trained for
    ``epochs`` on ``budget`` pairs: (task, members in eval mode)."""
    task = get_task(task_name)
    train = Pairs(*simulate_range(task, "train", 1, 0, budget), {"task": task_name})
    val = Pairs(*simulate_range(task, "val", 1, 0, 1024), {"task": task_name})
    config = TrainConfig(method="nre", replicates=2, epochs=epochs, hidden=list(hidden or [256] * 6), batch_size=128)
    seeds = [member_seed(1, task_name, budget, k) for k in range(2)]
    members = []
    for s in seeds:
        torch.manual_seed(s)
        members.append(get_method(config).estimator(task))
    subsets = [member_subset(s, len(train), budget, 1) for s in seeds]
    states, _ = fit_ensemble(task, members, seeds, subsets, train, val, config, log=lambda _: None)
    for member, state in zip(members, states):
        member.load_state_dict(state)
        member.eval()
    return task, members


def lampe_seconds(task, member, theta, x, bins: int) -> float:
    from lampe.diagnostics import expected_coverage_ni

    lower = torch.as_tensor(task.lower, dtype=torch.float32)
    upper = torch.as_tensor(task.upper, dtype=torch.float32)

    def log_p(t, xx):
        flat = t.reshape(-1, t.shape[-1])  # lampe passes one theta, or a batch of grid cells
        log_r = member(flat, xx.expand(len(flat), *xx.shape)).reshape(t.shape[:-1])
        return log_r + task.prior.log_prob(t)

    pairs = list(zip(torch.as_tensor(theta), torch.as_tensor(x)))
    start = time.perf_counter()
    with torch.no_grad():
        expected_coverage_ni(log_p, pairs, (lower, upper), bins=bins)
    return time.perf_counter() - start


def bench_bf16(
    epochs: int = 20, pairs: int = 24, budgets: tuple[int, int] = (1024, 16384), models: list | None = None
) -> str:
    """Prints one line per model and returns the ``coverage_bf16 ...`` summary line.

    ``models``, a list of ``(task_name, budget, task, members)``, replaces the training of
    SLCP and M/G/1 at ``budgets`` (``benchmarks/evaluation.py`` passes the models it has)."""
    native = bf16_capable("cpu")
    print(f"cpu ({THREADS} threads): native bf16 {native}; matmul float32 {matmul_peak():.0f} GFLOP/s, bf16 {bf16_matmul_gflops():.1f} GFLOP/s")
    speedups, differences, fractions = [], [], []
    if models is None:
        models = [(t, b, *trained(t, b, epochs)) for t in ("slcp", "mg1") for b in budgets]
    for task_name, budget, task, members in models:
        theta, x = simulate_range(task, "test", 1, 0, pairs)
        bins = grid_bins(90, task.theta_dim, 2**15)
        start = time.perf_counter()
        exact = coverage_ranks(task, members, theta, x, bins).numpy()
        float32_s = time.perf_counter() - start
        start = time.perf_counter()
        mixed = evaluate(task, members, theta, x, bins, precision=GridPrecision("bf16"))
        evaluation_s = time.perf_counter() - start
        start = time.perf_counter()
        bf16 = coverage_ranks(task, members, theta, x, bins, precision=GridPrecision("bf16")).numpy()
        bf16_s = time.perf_counter() - start
        # lampe evaluates one member; ours evaluate 2 members and their ensemble
        lampe_s = lampe_seconds(task, members[0], theta, x, bins) * len(members)
        m = mixed.metrics.set_index(["replicate", "metric"]).value
        difference = float(np.abs(bf16 - exact).max())
        auc = max(abs(coverage_auc(a) - coverage_auc(b)) for a, b in zip(bf16, exact))
        fraction = float(m[("ensemble", "grid_refined_fraction")])
        speedups.append(lampe_s / bf16_s)
        differences.append(difference)
        fractions.append(fraction)
        print(
            f"{task_name} {budget}: {len(grid(task.lower, task.upper, bins)[0])} cells; refined {fraction:.1%}, "
            f"fallbacks {m[('ensemble', 'grid_fallback_fraction')]:.0%}, bf16 error <= {m[('ensemble', 'grid_bf16_max_error')]:.3f}; "
            f"max |rank diff| {difference:.1e}, max |AUC diff| {auc:.1e}; "
            f"vs lampe: float32 {lampe_s / float32_s:.2f}x, bf16 {lampe_s / bf16_s:.2f}x (evaluate, all diagnostics: {evaluation_s:.1f} s)"
        )
    return (
        f"coverage_bf16 speedup_vs_lampe={min(speedups):.2f} max_rank_diff={max(differences):.1e} "
        f"refined_fraction={max(fractions):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--budgets", type=int, nargs=2, default=[1024, 16384])
    args = parser.parse_args()
    print(bench_bf16(args.epochs, args.pairs, tuple(args.budgets)))


if __name__ == "__main__":
    main()
