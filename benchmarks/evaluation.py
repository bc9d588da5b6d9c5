"""Evaluation: accuracy and cost of the adaptive posterior grid, grid coverage against lampe 0.9.

Run from the repository root::

    python benchmarks/evaluation.py                       # trains SLCP and M/G/1 NRE at 2^10 and 2^14
    python benchmarks/evaluation.py --models STUDY/models/slcp/nre/16384.pt STUDY/models/mg1/nre/16384.pt
    python benchmarks/evaluation.py --quick               # a check of the script: minutes on 2 cores

Flags: ``--pairs`` (test pairs per model, 64), ``--pairs-3d`` (for 3-parameter models;
default ``--pairs``), ``--epochs`` (20), ``--budgets`` (1024 16384), ``--hidden`` (the
MLP of the trained models, 6×256), ``--tasks`` (slcp mg1), ``--reference-factor`` (8),
``--models PATH...`` (model files of the workflow, ``bnre.methods.model_file.load_ensemble``, instead
of training), ``--test PATH...`` (their test pairs, one file per model or one for all;
by default ``STUDY/data/{task}/test.h5`` beside ``STUDY/models/{task}/{method}/{budget}.pt``),
``--reference-cache DIR`` (keep the references of ``--models`` there, keyed by a digest
of the model file and the test pairs, and read them on the next run), ``--repeats``
(timing repeats, best kept), ``--evaluate`` (time the full ``evaluate`` also
on a CPU; it always runs on CUDA), ``--no-uniform-lampe``, ``--no-cnn``, ``--no-bf16``
(skip parts 1, 2 and 4), ``--quick``.

0. The device, and this machine's float32 matmul peak (``common.matmul_peak``).
1. (Existing.) SLCP, 90 bins, the paper's 6×256 SELU MLP, untrained: the same weights in
   lampe's ``NRE`` and in bnre's ``RatioEstimator``; test pairs per second of lampe's
   ``expected_coverage_ni``, of ``bnre.evaluation.evaluate.coverage_ranks`` and of ``evaluate`` on
   the uniform grid, GFLOP/s against the peak; the ranks are checked against lampe's.
2. (Existing.) Lotka–Volterra's CNN embedding: bnre's split evaluation (embed once, head
   on the grid) against the full network on every cell.
3. The adaptive grid (``bnre.evaluation.adaptive.Refinement()``'s defaults) on trained NRE ensembles
   of SLCP (2-D) and M/G/1 (3-D), 2 members and their ensemble (with ``--models``, the
   file's K members and their ensemble), every row (member or ensemble) used:

   * the HPD rank of every row and pair on the adaptive grid, on the adaptive grid with a
     quarter of its budget, and on today's uniform grid (90² in 2-D, 32³ in 3-D), both through ``bnre.evaluation.grids.posterior_pass`` and
     ``bnre.evaluation.partition.hpd_ranks`` (float32 network, as ``evaluate`` does, which refines
     the adaptive grid for the networks alone), against a
     brute-force reference: the uniform grid of ``--reference-factor`` times the bins per
     dimension (720², 518,400 cells; 256³, 16.8M cells per pair), evaluated in chunks of
     cells with a running log-sum-exp of all cells and of the cells denser than the truth.
     Reported: the largest and mean |rank error| over pairs and rows, the worst pair, the
     fraction of ranks the reference itself does not resolve (``unresolved``'s test), and
     the reference's own error, estimated by its difference to the grid of half its bins;
   * network evaluations per pair: the adaptive grid's (``PosteriorBatch.evaluations``,
     mean and range, and the cells of its partition: each split in thirds costs two
     evaluations and adds two cells) against the uniform grid's 8,100 / 32,768;
   * the fraction of unresolved ranks (``bnre.evaluation.partition.unresolved``) on each grid;
   * on SLCP, wall time for ONE member (so that the work compares with lampe's): the
     adaptive ranks from observations to ranks (``Ensemble``, ``log_posterior_on``,
     ``posterior_pass`` with ``Refinement()``, ``hpd_ranks``), bnre's uniform 90² ranks
     (``coverage_ranks``), the adaptive ranks at a quarter of the budget, and lampe's
     ``expected_coverage_ni(..., bins=90)`` on lampe's
     ``NRE`` of the same architecture, the member's linear weights copied (the time depends
     on the architecture, not the weights; lampe's input is not rescaled, so its ranks
     are not compared), in pairs per second;
   * on CUDA (or with ``--evaluate``), pairs per second of the full ``evaluate`` (every
     diagnostic, every row) on the adaptive grid.
4. (Existing.) The bf16 grid with float32 refinement (``benchmarks/mixed_precision.py``)
   on the same models.

Prints ``coverage speedup_vs_lampe=<x> cnn_speedup_vs_full=<y>`` after parts 1-2, the
``coverage_bf16 ...`` line of part 4, and ends with exactly one line

    coverage_adaptive speedup_vs_lampe=<x> evals_vs_uniform=<y> max_rank_err=<z> max_rank_err_uniform=<w> unresolved=<u>

x: adaptive pairs/s over lampe's (one member, SLCP; the smallest over the SLCP models),
y: the largest ratio over the models of the adaptive grid's mean evaluations per pair to
the uniform grid's cells, z and w: the largest |rank error| against the reference over
the models (adaptive, uniform), u: the largest fraction of unresolved adaptive ranks.

Cost: the reference dominates. Per pair it evaluates the members' heads on 518,400 (2-D)
or 16.8M (3-D) cells, and a quarter (2-D) or an eighth (3-D) more for its self-check:
with 2 members of the 6×256 MLP about 0.7 and 22 TFLOP, on a 2-core CPU some 10 s and
5 min per pair, so a full default run on a CPU takes hours for M/G/1 (run it on a GPU,
or lower ``--pairs-3d`` or ``--reference-factor``). ``--quick`` uses an MLP of 2×64, 1
epoch, budgets 256 and 1024, 4 pairs (1 for M/G/1), one timing repeat, and small parts
1, 2 and 4: about 3 minutes on 2 free cores; its timings mean nothing (a few pairs, a
tiny MLP). Timings on a CPU shared with other jobs are unreliable (oversubscribed
threads); ``BNRE_BENCH_THREADS`` (``common.py``) sets the threads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # lampe's per-pair progress bars

from common import device_name, matmul_peak
from mixed_precision import bench_bf16, trained

import numpy as np
import torch
from torch import Tensor, nn

from bnre.evaluation.adaptive import Refinement
from bnre.evaluation.coverage import grid, grid_bins
from bnre.evaluation.ensemble import Ensemble
from bnre.evaluation.evaluate import coverage_ranks, evaluate, log_posterior_on
from bnre.evaluation.grids import UniformGrid, posterior_pass
from bnre.evaluation.partition import hpd_ranks, unresolved
from bnre.methods import build_estimator
from bnre.methods.model_file import load_ensemble
from bnre.simulation.pairs import open_pairs, read_pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Task, get_task

BINS = 90

#: Cells × pairs of one reference chunk: float64 (E, pairs, cells) stays small.
REFERENCE_ROWS = {"cpu": 2**18, "cuda": 2**23}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------
# 1-2. The uniform grid against lampe, and the CNN split (unchanged in substance)


def mlp_flops_per_row(estimator: nn.Module) -> int:
    """Floating-point operations of one head evaluation (2 per multiply-add)."""
    return sum(2 * m.in_features * m.out_features for m in estimator.head if isinstance(m, nn.Linear))


def copy_into_lampe(ours: nn.Module, theirs: nn.Module) -> bool:
    """Copy the linear layers of ``ours.head`` into lampe's ``theirs.net``; False where
    the shapes differ (then ``theirs`` keeps its own weights)."""
    linears = [m for m in ours.head if isinstance(m, nn.Linear)]
    their_linears = [m for m in theirs.net if hasattr(m, "weight")]  # zuko.nn.Linear
    if len(linears) != len(their_linears) or any(a.weight.shape != b.weight.shape for a, b in zip(linears, their_linears)):
        return False
    for a, b in zip(linears, their_linears):
        b.weight.data.copy_(a.weight.data)
        b.bias.data.copy_(a.bias.data)
    return True


def slcp_networks():
    import lampe

    task = get_task("slcp")
    torch.manual_seed(0)
    ours = build_estimator(task, [256] * 6, "SELU").eval()
    ours.theta_shift.zero_()
    ours.theta_scale.fill_(1.0)
    theirs = lampe.inference.NRE(2, 8, hidden_features=[256] * 6, activation=nn.SELU).eval()
    assert copy_into_lampe(ours, theirs)
    return task, ours, theirs


def bench_coverage(peak: float, pairs: int = 24) -> float:
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

    lampe_s = float("inf")
    for _ in range(2):  # the first run warms up
        start = time.perf_counter()
        with torch.no_grad():
            their_ranks, _ = expected_coverage_ni(log_p, test, (lower, upper), bins=BINS, device=device)
        sync(device)
        lampe_s = min(lampe_s, time.perf_counter() - start)

    ranks_only = evaluate_s = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        our_ranks = coverage_ranks(task, [ours], theta, x, BINS, device)
        sync(device)
        ranks_only = min(ranks_only, time.perf_counter() - start)
        start = time.perf_counter()
        evaluate(task, [ours], theta, x, BINS, device, grid_spec=UniformGrid(BINS))
        sync(device)
        evaluate_s = min(evaluate_s, time.perf_counter() - start)

    # lampe returns sorted ranks with 0 and 1 appended. Float rounding of the densities
    # (different batch shapes) can flip cells of almost equal density: allow 2e-3.
    difference = np.abs(np.sort(our_ranks[0].numpy()) - their_ranks[1:-1].numpy()).max()
    agree = difference < 2e-3
    cells = len(grid(task.lower, task.upper, BINS)[0])
    flops = mlp_flops_per_row(ours) * (cells + 1) * pairs
    print(f"SLCP, {BINS}^2 cells, 6x256 SELU MLP, {pairs} pairs; max |rank difference| with lampe {difference:.1e}")
    for name, seconds in (
        ("lampe expected_coverage_ni", lampe_s),
        ("bnre coverage_ranks", ranks_only),
        ("bnre evaluate (uniform, all diagnostics)", evaluate_s),
    ):
        gflops = flops / seconds / 1e9
        print(f"  {name:42s} {pairs / seconds:7.1f} pairs/s  {gflops:6.1f} GFLOP/s  {gflops / peak:5.1%} of peak")
    if not agree:
        raise SystemExit("ranks differ from lampe's")
    return lampe_s / ranks_only


def bench_cnn(pairs: int = 2, bins: int = 30, test_pairs: int = 32) -> float:
    task = get_task("lotka_volterra")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    estimator = build_estimator(task, [256] * 3, "SELU").eval().to(device)
    theta, x = simulate_range(task, "test", 1, 0, test_pairs)
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
    sync(device)
    split_per_pair = (time.perf_counter() - start) / len(theta)

    start = time.perf_counter()
    with torch.no_grad():
        for i in range(pairs):
            full(i)
    sync(device)
    full_per_pair = (time.perf_counter() - start) / pairs
    print(f"Lotka-Volterra CNN, {bins}^2 cells: split {1 / split_per_pair:.1f} pairs/s, full network per cell {1 / full_per_pair:.3f} pairs/s")
    return full_per_pair / split_per_pair


# --------------------------------------------------------------------------------------
# 3. The adaptive grid


@dataclass
class Model:
    """A trained ensemble and its test pairs."""

    task_name: str
    budget: int
    task: Task
    members: list
    theta: np.ndarray
    x: np.ndarray
    key: str | None = None  # digest of the model file and test pairs (file models), for --reference-cache

    @property
    def label(self) -> str:
        return f"{self.task_name} {self.budget}"


def trained_models(args) -> list[Model]:
    models = []
    for task_name in args.tasks:
        for budget in args.budgets:
            start = time.perf_counter()
            task, members = trained(task_name, budget, args.epochs, args.hidden)
            n = args.pairs_3d if task.theta_dim >= 3 else args.pairs
            theta, x = simulate_range(task, "test", 1, 0, n)
            print(f"trained {task_name} {budget}: {len(members)} members, {args.epochs} epochs, {time.perf_counter() - start:.0f} s")
            models.append(Model(task_name, budget, task, members, theta, x))
    return models


def test_file(model_path: Path, task_name: str, given: list[str], i: int) -> Path:
    """The test pairs of the ``i``-th model file: ``--test`` (one for all, or one per model),
    else ``STUDY/data/{task}/test.h5`` for ``STUDY/models/{task}/{method}/{budget}.pt``."""
    if given:
        return Path(given[i] if len(given) > 1 else given[0])
    return Path(os.path.abspath(model_path)).parents[3] / "data" / task_name / "test.h5"


def file_models(args) -> list[Model]:
    if args.test and len(args.test) not in (1, len(args.models)):
        raise SystemExit(f"--test takes one file, or one per model file ({len(args.models)}); got {len(args.test)}")
    models = []
    for i, path in enumerate(args.models):
        path = Path(path)
        task, members, meta = load_ensemble(path)
        test = test_file(path, task.name, args.test, i)
        if not test.exists():
            raise SystemExit(f"{path}: no test pairs at {test}; give them with --test")
        n = args.pairs_3d if task.theta_dim >= 3 else args.pairs
        with open_pairs(test, task.name) as source:
            n = min(n, len(source))
        pairs = read_pairs(test, task=task.name, rows=n)
        print(f"loaded {path}: {task.name}, {meta['config'].get('method')}, budget {meta['budget']}, "
              f"{len(members)} members; {n} test pairs from {test}")
        digest = hashlib.sha256(path.read_bytes())
        digest.update(np.ascontiguousarray(pairs.theta).tobytes())
        digest.update(np.ascontiguousarray(pairs.x).tobytes())
        key = f"{task.name}_{meta['config'].get('method')}_{meta['budget']}_{n}_{digest.hexdigest()[:16]}"
        models.append(Model(task.name, int(meta["budget"]), task, members, pairs.theta, pairs.x, key))
    return models


@torch.no_grad()
def reference_ranks(log_density, log_true: Tensor, theta: Tensor, task: Task, bins: int, device: str) -> tuple[Tensor, Tensor]:
    """Ranks (E, N) on the uniform grid of ``bins`` per dimension, in chunks of cells, and
    whether each is beyond that grid's resolution (the test of
    :func:`bnre.evaluation.partition.unresolved`: the truth denser than every cell, or its own cell
    holding more than half the mass)."""
    cells, _ = grid(task.lower, task.upper, bins)
    cells = cells.to(device)
    e, n = log_true.shape
    budget = REFERENCE_ROWS["cuda" if device == "cuda" else "cpu"]
    chunk = min(len(cells), budget)
    per = max(1, budget // chunk)
    minus_inf = torch.tensor(-torch.inf, dtype=torch.float64, device=device)
    total = torch.full((e, n), -torch.inf, dtype=torch.float64, device=device)
    denser, top = total.clone(), total.clone()
    truth = log_true.double()
    for a in range(0, n, per):
        rows = slice(a, min(a + per, n))
        t = truth[:, rows, None]
        for c in range(0, len(cells), chunk):
            values = log_density(cells[None, c : c + chunk], rows).double()  # (E, n, C)
            total[:, rows] = torch.logaddexp(total[:, rows], values.logsumexp(dim=-1))
            denser[:, rows] = torch.logaddexp(denser[:, rows], torch.where(values > t, values, minus_inf).logsumexp(dim=-1))
            top[:, rows] = torch.maximum(top[:, rows], values.amax(dim=-1))
    rank = (denser - total).exp()
    # the truth's own cell, and its mass
    lower = torch.as_tensor(task.lower, dtype=torch.float64, device=device)
    width = (torch.as_tensor(task.upper, dtype=torch.float64, device=device) - lower) / bins
    index = ((theta.double() - lower) / width).floor().clamp(0, bins - 1)
    own_centre = (lower + (index + 0.5) * width).float()
    own = log_density(own_centre[:, None], slice(0, n))[..., 0].double()
    beyond = (truth > top) | ((own - total).exp() > 0.5)
    return rank.cpu(), beyond.cpu()


@torch.no_grad()
def grid_ranks_on(log_density, log_true: Tensor, theta: Tensor, task: Task, spec, rows: int, device: str):
    """Ranks (E, N), unresolved (E, N), evaluations and cells (leaves) per pair (N,) on
    ``spec``'s grid."""
    ranks, beyond, evaluations, leaves = [], [], [], []
    passes = posterior_pass(log_density, len(theta), task.lower, task.upper, spec, rows, log_true, theta_true=theta, device=device)
    for batch in passes:
        mass = batch.log_masses().exp()
        truth = log_true[:, batch.rows].double()
        ranks.append(hpd_ranks(batch.log_density, truth, mass).cpu())
        beyond.append(unresolved(batch.log_density, truth, mass, batch.partition, theta[batch.rows]).cpu())
        evaluations += [batch.evaluations] * (batch.rows.stop - batch.rows.start)
        leaves += [batch.partition.cells] * (batch.rows.stop - batch.rows.start)
    return torch.cat(ranks, dim=1), torch.cat(beyond, dim=1), np.asarray(evaluations, np.float64), np.asarray(leaves, np.float64)


@torch.no_grad()
def adaptive_ranks_one(task: Task, member, theta: np.ndarray, x: np.ndarray, device: str, spec: Refinement) -> Tensor:
    """The coverage ranks (1, N) of one member on the adaptive grid, from the observations."""
    theta_t, x_t = torch.as_tensor(theta, device=device), torch.as_tensor(x, device=device)
    ensemble = Ensemble([member], x_t)
    log_density = log_posterior_on(ensemble, task)
    log_true = log_density(theta_t[:, None], slice(0, len(theta_t)))[..., 0]
    ranks = []
    passes = posterior_pass(log_density, len(theta_t), task.lower, task.upper, spec, ensemble.rows, log_true, theta_true=theta_t, device=device)
    for batch in passes:
        mass = batch.log_masses().exp()
        ranks.append(hpd_ranks(batch.log_density, log_true[:, batch.rows].double(), mass))
    return torch.cat(ranks, dim=1).cpu()


def lampe_nre(task: Task, member) -> tuple[nn.Module, bool]:
    """lampe's NRE of the member's head architecture, its linear weights copied where the
    shapes allow."""
    import lampe

    linears = [m for m in member.head if isinstance(m, nn.Linear)]
    activation = type(next(m for m in member.head if not isinstance(m, nn.Linear)))
    theirs = lampe.inference.NRE(
        task.theta_dim, int(np.prod(task.x_shape)), hidden_features=[m.out_features for m in linears[:-1]], activation=activation
    ).eval()
    return theirs, copy_into_lampe(member, theirs)


def best_seconds(fn, repeats: int, device: str) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bench_timing(model: Model, device: str, repeats: int, spec: Refinement, quarter_spec: Refinement) -> float:
    """Pairs per second of one member's ranks: adaptive (``spec``, and ``quarter_spec``'s
    smaller budget), bnre uniform 90², lampe 90²; prints them and returns ``spec``'s over lampe's."""
    from lampe.diagnostics import expected_coverage_ni

    task, member = model.task, model.members[0].to(device)
    theta, x = model.theta, model.x
    n = len(theta)
    theirs, copied = lampe_nre(task, member)
    theirs = theirs.to(device)
    lower, upper = torch.as_tensor(task.lower, dtype=torch.float32), torch.as_tensor(task.upper, dtype=torch.float32)

    def log_p(t, xx):
        return theirs(t, xx.reshape(-1)) + task.prior.log_prob(t)

    test = list(zip(torch.as_tensor(theta), torch.as_tensor(x)))

    def run_lampe(pairs=test):
        with torch.no_grad():
            expected_coverage_ni(log_p, pairs, (lower, upper), bins=BINS, device=device)

    # warm-up on two pairs
    run_lampe(test[:2])
    adaptive_ranks_one(task, member, theta[:2], x[:2], device, spec)
    coverage_ranks(task, [member], theta[:2], x[:2], BINS, device)
    lampe_s = best_seconds(run_lampe, repeats, device)
    adaptive_s = best_seconds(lambda: adaptive_ranks_one(task, member, theta, x, device, spec), repeats, device)
    quarter_s = best_seconds(lambda: adaptive_ranks_one(task, member, theta, x, device, quarter_spec), repeats, device)
    uniform_s = best_seconds(lambda: coverage_ranks(task, [member], theta, x, BINS, device), repeats, device)
    hidden = [m.out_features for m in member.head if isinstance(m, nn.Linear)][:-1]
    print(f"  one member, {n} pairs, head MLP {hidden} (lampe's NRE of that architecture, weights "
          f"{'copied' if copied else 'its own'}; timing only):")
    print(f"    lampe expected_coverage_ni 90^2   {n / lampe_s:8.1f} pairs/s")
    print(f"    bnre uniform 90^2 coverage_ranks  {n / uniform_s:8.1f} pairs/s ({lampe_s / uniform_s:.2f}x lampe)")
    print(f"    bnre adaptive ranks               {n / adaptive_s:8.1f} pairs/s ({lampe_s / adaptive_s:.2f}x lampe)")
    print(f"    bnre adaptive ranks, {quarter_spec.budget(task.theta_dim):>5} cells   {n / quarter_s:8.1f} pairs/s "
          f"({lampe_s / quarter_s:.2f}x lampe)")
    return lampe_s / adaptive_s


def bench_evaluate(model: Model, device: str, spec: Refinement) -> None:
    """Pairs per second of the full ``evaluate`` on the adaptive grid, every row."""
    task, members, theta, x = model.task, model.members, model.theta, model.x
    bins = grid_bins(BINS, task.theta_dim, 2**15)
    evaluate(task, members, theta[:2], x[:2], bins, device, grid_spec=spec)  # warm-up
    start = time.perf_counter()
    result = evaluate(task, members, theta, x, bins, device, grid_spec=spec)
    sync(device)
    seconds = time.perf_counter() - start
    m = result.metrics.set_index(["replicate", "metric"]).value
    print(f"  evaluate (adaptive, all diagnostics, {len(members)} members + ensemble) on {device}: "
          f"{len(theta) / seconds:.2f} pairs/s; grid_evaluations {m[('ensemble', 'grid_evaluations')]:.0f}, "
          f"unresolved_fraction {m[('ensemble', 'unresolved_fraction')]:.3f}")


def bench_adaptive(models: list[Model], args, device: str) -> str:
    """Part 3: prints per model, returns the ``coverage_adaptive ...`` line."""
    spec = Refinement()
    errors, errors_uniform, ratios, fractions, speedups = [], [], [], [], []
    for model in models:
        task = model.task
        dim = task.theta_dim
        bins = grid_bins(BINS, dim, 2**15)
        ref_bins = bins * args.reference_factor
        theta_t = torch.as_tensor(model.theta, device=device)
        ensemble = Ensemble(model.members, torch.as_tensor(model.x, device=device))
        log_density = log_posterior_on(ensemble, task)
        with torch.no_grad():
            log_true = log_density(theta_t[:, None], slice(0, len(theta_t)))[..., 0]  # (E, N)
        e, n = log_true.shape
        print(f"{model.label}: {len(model.members)} members + ensemble, {n} pairs; reference {ref_bins}^{dim} = "
              f"{ref_bins**dim:,} cells per pair")
        start = time.perf_counter()
        cache = None
        if args.reference_cache and model.key:
            cache = Path(args.reference_cache) / f"{model.key}_{ref_bins}.pt"
        if cache is not None and cache.exists():
            reference, reference_beyond, coarser = torch.load(cache).values()
            print(f"  reference ranks read from {cache}")
        else:
            reference, reference_beyond = reference_ranks(log_density, log_true, theta_t, task, ref_bins, device)
            # the reference's own error: against the grid of half its bins (for an error of
            # first order in the cell width, about twice the reference's)
            coarser, _ = reference_ranks(log_density, log_true, theta_t, task, ref_bins // 2, device)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"reference": reference, "beyond": reference_beyond, "coarser": coarser}, cache.with_suffix(".tmp"))
                cache.with_suffix(".tmp").replace(cache)
        reference_s = time.perf_counter() - start
        self_error = (coarser - reference).abs().double()
        start = time.perf_counter()
        adaptive, adaptive_beyond, evaluations, leaves = grid_ranks_on(log_density, log_true, theta_t, task, spec, ensemble.rows, device)
        adaptive_s = time.perf_counter() - start
        start = time.perf_counter()
        quarter_spec = Refinement(cells=spec.budget(dim) // 4)
        quarter, quarter_beyond, quarter_evaluations, _ = grid_ranks_on(
            log_density, log_true, theta_t, task, quarter_spec, ensemble.rows, device
        )
        quarter_s = time.perf_counter() - start
        start = time.perf_counter()
        uniform, uniform_beyond, _, _ = grid_ranks_on(log_density, log_true, theta_t, task, UniformGrid(bins), ensemble.rows, device)
        uniform_s = time.perf_counter() - start
        error = (adaptive - reference).abs().double()
        error_quarter = (quarter - reference).abs().double()
        error_uniform = (uniform - reference).abs().double()
        resolved = ~reference_beyond
        cells = bins**dim
        ratio = float(evaluations.mean()) / cells
        fraction = float(adaptive_beyond.double().mean())
        zero = float((adaptive == 0).double().mean())
        print(f"  reference: {reference_s:.1f} s; unresolved by the reference {float(reference_beyond.double().mean()):.1%} "
              f"of ranks; reference ranks exactly 0: {float((reference == 0).double().mean()):.1%}; "
              f"|rank({ref_bins // 2}^{dim}) - rank(reference)| max {float(self_error.max()):.2e} mean {float(self_error.mean()):.2e} "
              f"(errors below about half of it are beyond the reference)")
        for name, err, beyond, ranks, seconds in (
            (f"adaptive {spec.coarse(dim)}^{dim}->{spec.budget(dim)}", error, adaptive_beyond, adaptive, adaptive_s),
            (f"adaptive {quarter_spec.coarse(dim)}^{dim}->{quarter_spec.budget(dim)}", error_quarter, quarter_beyond, quarter, quarter_s),
            (f"uniform {bins}^{dim}", error_uniform, uniform_beyond, uniform, uniform_s),
        ):
            kept = float(err[resolved].max()) if bool(resolved.any()) else float("nan")
            print(f"  {name:22s} |rank error| max {float(err.max()):.2e} mean {float(err.mean()):.2e} "
                  f"(max where the reference resolves {kept:.2e}); unresolved {float(beyond.double().mean()):.1%}; "
                  f"ranks exactly 0 {float((ranks == 0).double().mean()):.1%}; {seconds:.1f} s")
        print(f"  evaluations per pair: adaptive mean {evaluations.mean():.0f} (min {evaluations.min():.0f}, "
              f"max {evaluations.max():.0f}; cells of its partition {leaves.mean():.0f}) against uniform {cells}: {ratio:.3f}x; "
              f"at a quarter of the budget {quarter_evaluations.mean():.0f} ({quarter_evaluations.mean() / cells:.3f}x)")
        row, pair = np.unravel_index(int(error.argmax()), error.shape)
        names = ensemble.names
        print(f"  worst adaptive pair: row {names[row]}, pair {pair}, theta {np.round(model.theta[pair], 4).tolist()}: "
              f"adaptive {float(adaptive[row, pair]):.4f}, reference {float(reference[row, pair]):.4f}, "
              f"uniform {float(uniform[row, pair]):.4f}; evaluations {evaluations[pair]:.0f}; "
              f"adaptive unresolved {bool(adaptive_beyond[row, pair])}, reference unresolved {bool(reference_beyond[row, pair])}")
        if zero > 0:
            print(f"  adaptive ranks exactly 0: {zero:.1%}")
        errors.append(float(error.max()))
        errors_uniform.append(float(error_uniform.max()))
        ratios.append(ratio)
        fractions.append(fraction)
        if model.task_name == "slcp":
            speedups.append(bench_timing(model, device, args.repeats, spec, quarter_spec))
        if device == "cuda" or args.evaluate:
            bench_evaluate(model, device, spec)
    speedup = f"{min(speedups):.2f}" if speedups else "nan"
    return (
        f"coverage_adaptive speedup_vs_lampe={speedup} evals_vs_uniform={max(ratios):.3f} "
        f"max_rank_err={max(errors):.2e} max_rank_err_uniform={max(errors_uniform):.2e} unresolved={max(fractions):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that the script runs")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--pairs-3d", type=int, default=None, help="test pairs of 3-parameter models (default --pairs)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1024, 16384])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256] * 6)
    parser.add_argument("--tasks", nargs="+", default=["slcp", "mg1"])
    parser.add_argument("--reference-factor", type=int, default=8)
    parser.add_argument("--reference-cache", default=None, help="folder to keep the references of --models in, keyed by the model file and pairs")
    parser.add_argument("--models", nargs="+", default=None, help="model files models/{task}/{method}/{budget}.pt")
    parser.add_argument("--test", nargs="+", default=[], help="test pairs of the model files: one, or one per model")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--evaluate", action="store_true", help="time the full evaluate also on a CPU")
    parser.add_argument("--no-uniform-lampe", action="store_true", help="skip part 1")
    parser.add_argument("--no-cnn", action="store_true", help="skip part 2")
    parser.add_argument("--no-bf16", action="store_true", help="skip part 4")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.pairs_3d = min(args.pairs, 4), 1
        args.epochs, args.budgets, args.hidden, args.repeats = 1, [256, 1024], [64, 64], 1
    args.pairs_3d = args.pairs_3d or args.pairs
    if args.reference_factor < 2:
        raise SystemExit("--reference-factor must be >= 2")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    peak = matmul_peak()
    print(f"device: {device_name()}; float32 matmul peak {peak:.0f} GFLOP/s")

    if not (args.no_uniform_lampe and args.no_cnn):
        coverage = bench_coverage(peak, 4 if args.quick else 24) if not args.no_uniform_lampe else float("nan")
        cnn = (bench_cnn(1, 10, 4) if args.quick else bench_cnn()) if not args.no_cnn else float("nan")
        print(f"coverage speedup_vs_lampe={coverage:.2f} cnn_speedup_vs_full={cnn:.1f}")

    models = file_models(args) if args.models else trained_models(args)
    adaptive_line = bench_adaptive(models, args, device)
    if not args.no_bf16:
        bf16_models = [(m.task_name, m.budget, m.task, m.members) for m in models]
        print(bench_bf16(pairs=min(args.pairs, 24), models=bf16_models))
    print(adaptive_line)


if __name__ == "__main__":
    main()
