"""Simulation speed: the vectorised task simulators against naive one-at-a-time loops.

Run from the repository root as ``python benchmarks/simulators.py``. For every task of
:data:`bnre.tasks.TASKS` with a module ``benchmarks/reference/<task>.py`` (defining
``simulate_one(theta, rng)``), it measures simulations per second of

* :func:`bnre.simulation.simulate.simulate_range` (prior draws, simulation, float32 cast, checks),
  doubling the number of pairs until one run takes ``--seconds``;
* the reference loop on prior draws, doubling likewise;

and ends with one line per task, ``<task> sims_per_s=<n> speedup_vs_loop=<x>``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="tasks to time (default: all with a reference)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum duration of a timed run")
    return parser.parse_args()


ARGS = parse()
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGS.threads)  # before numpy loads BLAS
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bnre.simulation.simulate import simulate_range  # noqa: E402
from bnre.tasks import TASKS, Task, get_task  # noqa: E402

#: Tasks also timed at exactly the paper's pool size.
POOL = {"slcp": 2**17, "gaussian": 2**17}


def timed(run: Callable[[int], object], n: int, seconds: float) -> tuple[int, float]:
    """Double ``n`` until ``run(n)`` takes at least ``seconds``; return ``n`` and its time."""
    while True:
        start = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed
        n *= 2 if elapsed > seconds / 16 else 8


def batched_rate(task: Task, seconds: float) -> float:
    n, elapsed = timed(lambda n: simulate_range(task, "train", 0, 0, n), 1024, seconds)
    print(f"  batched: {n} sims in {elapsed:.2f} s")
    return n / elapsed


def loop_rate(task: Task, simulate_one: Callable, seconds: float) -> float:
    rng = np.random.default_rng(0)

    def run(n: int) -> None:
        for theta in task.prior.sample(n, rng):
            simulate_one(theta, rng)

    n, elapsed = timed(run, 16, seconds)
    print(f"  loop:    {n} sims in {elapsed:.2f} s")
    return n / elapsed


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    names = ARGS.tasks or sorted(TASKS)
    results: dict[str, tuple[float, float]] = {}
    for name in names:
        task = get_task(name)
        if not (HERE / "reference" / f"{name}.py").exists():
            print(f"{name}: no benchmarks/reference/{name}.py, skipped")
            continue
        reference = importlib.import_module(f"reference.{name}")
        print(f"{name}:")
        rate = batched_rate(task, ARGS.seconds)
        if name in POOL:
            start = time.perf_counter()
            simulate_range(task, "train", 0, 0, POOL[name])
            print(f"  batched: {POOL[name]} sims in {time.perf_counter() - start:.2f} s")
        results[name] = (rate, rate / loop_rate(task, reference.simulate_one, ARGS.seconds))
    for name, (rate, speedup) in results.items():
        print(f"{name} sims_per_s={rate:.0f} speedup_vs_loop={speedup:.1f}")


if __name__ == "__main__":
    main()
