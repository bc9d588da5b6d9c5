"""Evaluation speed: grid coverage of bnre vs lampe 0.9, and the CNN embedding split.

Run from the repository root::

    python benchmarks/evaluation.py

1. SLCP, 2 parameters, 90 bins, the paper's 6×256 SELU MLP. The same weights are loaded
   into lampe's ``NRE`` and into bnre's ``RatioEstimator`` (with identity
   standardisation), so both compute the same ranks (checked). Reported: test pairs per
   second of ``lampe.diagnostics.expected_coverage_ni``, of ``bnre.evaluate.coverage_ranks``
   (the same work) and of ``bnre.evaluate.evaluate`` (every diagnostic), and the achieved
   GFLOP/s against this machine's float32 matmul peak measured in the same run.
2. Lotka–Volterra with its CNN embedding and a 3×256 head, 30 bins: bnre's evaluation
   (embed each observation once, head on the grid) vs evaluating the full network on
   every grid cell in batches of 4,096 cells. The ratio is bounded by the cost of the
   whole network over that of the head.

3. The bf16 grid with float32 refinement (``benchmarks/mixed_precision.py``, its defaults:
   trained SLCP and M/G/1 ensembles at 2^10 and 2^14) against float32 and lampe; skipped
   with ``--no-bf16``.

Prints ``coverage speedup_vs_lampe=<x> cnn_speedup_vs_full=<y>``, then ends with
``coverage_bf16 speedup_vs_lampe=<x> max_rank_diff=<y> refined_fraction=<z>``.
"""

from __future__ import annotations

import sys
import time

from common import device_name, matmul_peak
from mixed_precision import bench_bf16

import numpy as np
import torch
from torch import nn

from bnre.coverage import grid
from bnre.evaluate import coverage_ranks, evaluate
from bnre.simulate import simulate_range
from bnre.tasks import get_task
from bnre.methods import build_estimator

BINS = 90


def mlp_flops_per_row(estimator: nn.Module) -> int:
    """Floating-point operations of one head evaluation (2 per multiply-add)."""
    return sum(2 * m.in_features * m.out_features for m in estimator.head if isinstance(m, nn.Linear))


def slcp_networks():
    import lampe

    task = get_task("slcp")
    torch.manual_seed(0)
    ours = build_estimator(task, [256] * 6, "SELU").eval()
    ours.theta_shift.zero_()
    ours.theta_scale.fill_(1.0)
    theirs = lampe.inference.NRE(2, 8, hidden_features=[256] * 6, activation=nn.SELU).eval()
    linears = [m for m in ours.head if isinstance(m, nn.Linear)]
    their_linears = [m for m in theirs.net if hasattr(m, "weight")]  # zuko.nn.Linear
    assert len(linears) == len(their_linears)
    for a, b in zip(linears, their_linears):
        b.weight.data.copy_(a.weight.data)
        b.bias.data.copy_(a.bias.data)
    return task, ours, theirs


def bench_coverage(pairs: int = 24) -> float:
    from lampe.diagnostics import expected_coverage_ni

    task, ours, theirs = slcp_networks()
    theta, x = simulate_range(task, "test", 1, 0, pairs)
    lower, upper = torch.as_tensor(task.lower, dtype=torch.float32), torch.as_tensor(task.upper, dtype=torch.float32)
    log_prior = -task.prior.log_volume

    def log_p(t, xx):
        return theirs(t, xx) + log_prior

    test = list(zip(torch.as_tensor(theta), torch.as_tensor(x)))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ours, theirs = ours.to(device), theirs.to(device)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    lampe_s = float("inf")
    for _ in range(2):  # the first run warms up
        start = time.perf_counter()
        with torch.no_grad():
            their_ranks, _ = expected_coverage_ni(log_p, test, (lower, upper), bins=BINS, device=device)
        sync()
        lampe_s = min(lampe_s, time.perf_counter() - start)

    ranks_only = evaluate_s = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        our_ranks = coverage_ranks(task, [ours], theta, x, BINS, device)
        sync()
        ranks_only = min(ranks_only, time.perf_counter() - start)
        start = time.perf_counter()
        evaluate(task, [ours], theta, x, BINS, device)
        sync()
        evaluate_s = min(evaluate_s, time.perf_counter() - start)

    # lampe returns sorted ranks with 0 and 1 appended. Float rounding of the densities
    # (different batch shapes) can flip cells of almost equal density: allow 2e-3.
    difference = np.abs(np.sort(our_ranks[0].numpy()) - their_ranks[1:-1].numpy()).max()
    agree = difference < 2e-3
    cells = len(grid(task.lower, task.upper, BINS)[0])
    flops = mlp_flops_per_row(ours) * (cells + 1) * pairs
    peak = matmul_peak()
    print(f"device: {device_name()}; float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"SLCP, {BINS}^2 cells, 6x256 SELU MLP, {pairs} pairs; max |rank difference| with lampe {difference:.1e}")
    for name, seconds in (("lampe expected_coverage_ni", lampe_s), ("bnre coverage_ranks", ranks_only), ("bnre evaluate (all diagnostics)", evaluate_s)):
        gflops = flops / seconds / 1e9
        print(f"  {name:34s} {pairs / seconds:7.1f} pairs/s  {gflops:6.1f} GFLOP/s  {gflops / peak:5.1%} of peak")
    if not agree:
        raise SystemExit("ranks differ from lampe's")
    return lampe_s / ranks_only


def bench_cnn(pairs: int = 2, bins: int = 30) -> float:
    task = get_task("lotka_volterra")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    estimator = build_estimator(task, [256] * 3, "SELU").eval().to(device)
    theta, x = simulate_range(task, "test", 1, 0, 32)
    cells, _ = grid(task.lower, task.upper, bins)
    cells = cells.to(device)

    def full(i: int) -> None:
        xi = torch.as_tensor(x[i], device=device).expand(len(cells), *x.shape[1:])
        for chunk in range(0, len(cells), 4096):  # lampe's gridapply batch size
            estimator(cells[chunk : chunk + 4096], xi[chunk : chunk + 4096])

    with torch.no_grad():  # warm-up of both paths
        coverage_ranks(task, [estimator], theta[:2], x[:2], bins, device)
        full(0)
    start = time.perf_counter()
    coverage_ranks(task, [estimator], theta, x, bins, device)
    if device == "cuda":
        torch.cuda.synchronize()
    split_per_pair = (time.perf_counter() - start) / len(theta)

    start = time.perf_counter()
    with torch.no_grad():
        for i in range(pairs):
            full(i)
    if device == "cuda":
        torch.cuda.synchronize()
    full_per_pair = (time.perf_counter() - start) / pairs
    print(f"Lotka-Volterra CNN, {bins}^2 cells: split {1 / split_per_pair:.1f} pairs/s, full network per cell {1 / full_per_pair:.3f} pairs/s")
    return full_per_pair / split_per_pair


if __name__ == "__main__":
    coverage_speedup = bench_coverage()
    cnn_speedup = bench_cnn()
    print(f"coverage speedup_vs_lampe={coverage_speedup:.2f} cnn_speedup_vs_full={cnn_speedup:.1f}")
    if "--no-bf16" not in sys.argv[1:]:
        print(bench_bf16())
