"""Simulation speed of the gravitational-wave task, and where the time goes.

Run from the repository root as ``python benchmarks/gravitational_waves.py`` (needs
lalsuite). One process simulates ``--batches`` blocks of ``--batch`` pairs with
:func:`bnre.simulation.simulate.simulate_range` (prior draws, nuisances, IMRPhenomPv2, projection,
noise, whitening, float32 cast and finiteness check), timing separately

* the IMRPhenomPv2 calls (``GravitationalWaves.polarisations``: one
  ``SimInspiralChooseFDWaveform`` per sample, plus copying its output);
* the antenna patterns and delays (``GravitationalWaves.antenna``: lal, per sample);
* the rest (vectorised numpy: projection, time shifts, noise, whitening, FFTs).

The last line is ``gw sims_per_second=<x>``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

from common import THREADS  # noqa: F401  (sets the thread counts, puts src/ on the path)

from bnre.simulation.simulate import CHUNK, simulate_range
from bnre.tasks.gravitational_waves import GravitationalWaves


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batch", type=int, default=CHUNK, help=f"pairs per simulate_range call (multiple of {CHUNK})"
    )
    parser.add_argument("--batches", type=int, default=4, help="timed calls (after one warm-up)")
    return parser.parse_args()


def timed(function: Callable, totals: dict[str, float], key: str) -> Callable:
    """``function`` adding its wall time to ``totals[key]``."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def main() -> None:
    args = parse()
    if args.batch < CHUNK or args.batch % CHUNK:
        raise SystemExit(f"--batch must be a multiple of {CHUNK}, the unit simulate_range draws")
    task = GravitationalWaves()
    totals: dict[str, float] = defaultdict(float)
    task.polarisations = timed(task.polarisations, totals, "waveform")
    task.antenna = timed(task.antenna, totals, "antenna")
    simulate_range(task, "train", 0, 0, args.batch)  # warm-up (imports, caches)
    totals.clear()
    start = time.perf_counter()
    for b in range(args.batches):
        simulate_range(task, "train", 0, (b + 1) * args.batch, (b + 2) * args.batch)
    elapsed = time.perf_counter() - start
    n = args.batches * args.batch
    rest = elapsed - totals["waveform"] - totals["antenna"]
    print(f"{n} simulations in {args.batches} batches of {args.batch}: {elapsed:.2f} s, one process")
    for key, seconds in (("waveform", totals["waveform"]), ("antenna", totals["antenna"]), ("rest", rest)):
        print(f"  {key:9s} {seconds:6.2f} s  {seconds / elapsed:6.1%}  {seconds / n * 1e3:.3f} ms/sim")
    print(f"gw sims_per_second={n / elapsed:.1f}")


if __name__ == "__main__":
    main()
