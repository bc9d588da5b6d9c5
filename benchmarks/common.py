"""Shared helpers of the benchmark scripts: thread setup, timing, matmul peak."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

THREADS = int(os.environ.get("BNRE_BENCH_THREADS", "2"))
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import torch  # noqa: E402

torch.set_num_threads(THREADS)


def timeit(fn: Callable[[], object], min_seconds: float = 1.0, repeats: int = 3) -> float:
    """Best wall time of ``fn`` over ``repeats`` runs (each repeated to last ``min_seconds``)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def matmul_peak(n: int = 2048) -> float:
    """Float32 matrix-multiply throughput of this machine, GFLOP/s (best of a few runs)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def product() -> None:
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()

    seconds = timeit(product, min_seconds=0.5)
    return 2 * n**3 / seconds / 1e9


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({THREADS} threads)"


def plain_loop_seconds(parameters, loss, theta, x, epochs: int, device: str, batch: int = 128) -> float:
    """Seconds of the loop a user writes: AdamW (lr 1e-3) on ``parameters`` and
    ``loss(theta_batch, x_batch)`` over freshly shuffled batches of ``theta`` and ``x``
    (already on ``device``), ``epochs`` times."""
    optimizer = torch.optim.AdamW(parameters, lr=1e-3)
    n = len(theta)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        for a in range(0, n, batch):
            i = order[a : a + batch]
            value = loss(theta[i], x[i])
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def ensemble_seconds(task, train, val, config, members: list[int], budget: int) -> float:
    """Seconds of one :func:`bnre.training.fit.fit_ensemble` call training ``members`` of
    ``config``'s method together, each on ``budget`` pairs of its own subset of ``train``."""
    from bnre.methods import get_method
    from bnre.sampling import member_seed, member_subset
    from bnre.training.fit import fit_ensemble

    seeds = [member_seed(0, task.name, budget, m) for m in members]
    subsets = [member_subset(s, len(train), budget) for s in seeds]
    estimators = []
    for s in seeds:
        torch.manual_seed(s)
        estimators.append(get_method(config).estimator(task))
    start = time.perf_counter()
    fit_ensemble(task, estimators, seeds, subsets, train, val, config, log=lambda _: None)
    return time.perf_counter() - start
