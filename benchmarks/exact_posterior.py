"""Cost of the exact posterior on the grid against the estimators' evaluation of it.

Run from the repository root::

    python benchmarks/exact_posterior.py

For each task with a tractable likelihood, on the same test pairs and grid (64 bins per
dimension, as in ``config/ablation.yaml``):

1. the grid pass alone: the unnormalised log posterior of every cell, from the exact
   likelihood (``bnre.evaluation.diagnostics.exact_log_posterior``, float64) and from an ensemble of
   3 members with the paper's 6×256 SELU MLP and their ensemble
   (``bnre.evaluation.evaluate.log_posterior_on``, float32; untrained: the cost does not depend on
   the weights);
2. the whole evaluation, every diagnostic included: ``bnre.evaluation.diagnostics.evaluate_exact``
   against ``bnre.evaluation.evaluate.evaluate`` of the same 3 members. ``evaluate`` also computes
   the exact posterior of every pair (for ``kl_exact``), so its time includes that cost.

Reported: seconds per test pair and the ratio exact / estimators. Ends with
``exact_posterior cost_vs_estimators=<x>``, the largest ratio of the grid passes.
"""

from __future__ import annotations

from common import device_name, timeit

import torch

from bnre.evaluation.coverage import grid, grid_pass
from bnre.evaluation.diagnostics import evaluate_exact, exact_log_posterior
from bnre.evaluation.ensemble import Ensemble
from bnre.evaluation.evaluate import evaluate, log_posterior_on
from bnre.methods import build_estimator
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task

TASKS = ("gaussian", "two_moons", "slcp", "weinberg")
BINS = 64
PAIRS = 64
MEMBERS = 3


def members(task):
    torch.manual_seed(0)
    return [build_estimator(task, [256] * 6, "SELU").eval() for _ in range(MEMBERS)]


@torch.no_grad()
def main() -> None:
    print(f"device: {device_name()}; {PAIRS} test pairs, {BINS} bins per dimension, {MEMBERS} members of 6x256")
    worst = 0.0
    for name in TASKS:
        task = get_task(name)
        theta, x = simulate_range(task, "test", 1, 0, PAIRS)
        cells, _ = grid(task.lower, task.upper, BINS)
        ensemble = Ensemble(members(task), torch.as_tensor(x))
        estimators = log_posterior_on(ensemble, task)
        exact = exact_log_posterior(task, torch.as_tensor(x))

        def pass_of(log_density):
            return lambda: [batch.mass.sum() for batch in grid_pass(log_density, PAIRS, cells, ensemble.rows)]

        networks = timeit(pass_of(estimators), min_seconds=0.5, repeats=2)
        likelihood = timeit(pass_of(exact), min_seconds=0.5, repeats=2)
        worst = max(worst, likelihood / networks)
        print(f"{name:10s} grid pass: estimators {networks / PAIRS * 1e3:7.2f} ms/pair, exact "
              f"{likelihood / PAIRS * 1e3:7.2f} ms/pair, ratio {likelihood / networks:.3f}")
        full = timeit(lambda: evaluate(task, ensemble.members, theta, x, BINS), min_seconds=0.1, repeats=1)
        full_exact = timeit(lambda: evaluate_exact(task, theta, x, BINS), min_seconds=0.1, repeats=1)
        print(f"{'':10s} whole evaluation: estimators {full / PAIRS * 1e3:7.2f} ms/pair, exact "
              f"{full_exact / PAIRS * 1e3:7.2f} ms/pair, ratio {full_exact / full:.3f}")
    print(f"exact_posterior cost_vs_estimators={worst:.3f}")


if __name__ == "__main__":
    main()
