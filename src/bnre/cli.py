"""Command-line interface: one sub-command per workflow stage.

Every stage can be run by hand, e.g. ``python -m bnre simulate --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence


def set_threads(threads: int | None) -> None:
    """Limit torch (and BLAS, for libraries not yet loaded) to ``threads`` cores (None: no limit)."""
    if threads is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch
    except ImportError:  # the aggregation and figure stages do not need torch
        return
    torch.set_num_threads(threads)


def task_shapes(task) -> dict:
    """The parameter and observation shapes files of ``task`` must have."""
    return {"theta_dim": task.theta_dim, "x_shape": tuple(task.x_shape)}


def log(message: str) -> None:
    print(message, flush=True)


def cmd_simulate(args: argparse.Namespace) -> None:
    from .provenance import provenance
    from .simulation.pairs import write_pairs
    from .simulation.simulate import simulate_range
    from .tasks import get_task

    task = get_task(args.task)
    theta, x = simulate_range(task, args.split, args.seed, args.start, args.stop)
    write_pairs(
        args.output, theta, x, task=task.name, split=args.split, seed=args.seed, start=args.start, stop=args.stop,
        provenance=json.dumps(provenance()),
    )
    log(f"{task.name}/{args.split}: simulated pairs [{args.start}, {args.stop}) -> {args.output}")


def cmd_merge(args: argparse.Namespace) -> None:
    from .simulation.pairs import merge_pairs

    merge_pairs(args.blocks, args.output)
    log(f"merged {len(args.blocks)} blocks -> {args.output}")


def cmd_train(args: argparse.Namespace) -> None:
    from .methods import get_method
    from .methods.config import EXECUTION_OPTIONS, TrainConfig
    from .options import parse_json
    from .provenance import provenance
    from .simulation.pairs import open_pairs
    from .tasks import get_task
    from .training.checkpoint import Interrupted
    from .training.train import train_ensemble

    options = parse_json(args.options, "training")
    for key in EXECUTION_OPTIONS:  # given as their own options by the workflow (untracked)
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if options.setdefault("method", args.method) != args.method:
        raise ValueError(f"--method {args.method} but the options say method {options['method']!r}")
    config = TrainConfig.from_dict(options)
    task = get_task(args.task)
    shapes = task_shapes(task)
    # x stays in the files: only the members' rows are read, or streamed when too large
    with (
        open_pairs(args.train, task=task.name, split="train", **shapes) as train,
        open_pairs(args.val, task=task.name, split="val", **shapes) as val,
    ):
        if args.budget > len(train):
            raise ValueError(f"budget {args.budget} exceeds the {len(train)} pairs of {args.train}")
        log(f"training {config.replicates} {get_method(config).describe()} members on {args.budget} pairs of {task.name}")
        checkpoint = args.checkpoint or f"{args.model}.checkpoint"
        try:
            train_ensemble(args.task, config, train, val, args.budget, args.model, args.history, log, checkpoint, provenance())
        except Interrupted as stop:
            log(str(stop))
            raise SystemExit(143) from None


def _keyed(table, keys: dict):
    """The table with the ``keys`` columns inserted first (in place)."""
    for i, (k, v) in enumerate(keys.items()):
        table.insert(i, k, v)
    return table


def _write_tables(tables, paths, keys: dict) -> None:
    """Each table with the ``keys`` columns first, written atomically to its path."""
    from .io import atomic_path

    for table, path in zip(tables, paths):
        _keyed(table, keys)
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)


def _test_pairs(path: str, pairs: int, task):
    from .simulation.pairs import read_pairs

    test = read_pairs(path, task=task.name, split="test", **task_shapes(task))
    if pairs > len(test):
        raise ValueError(f"{pairs} coverage pairs requested but {path} holds {len(test)}")
    return test.theta[:pairs], test.x[:pairs], int(test.attrs["seed"])


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .devices import pick_device
    from .evaluation.config import EvaluationConfig
    from .evaluation.coverage import grid_bins
    from .evaluation.evaluate import evaluate, with_kept_epochs
    from .evaluation.grids import describe
    from .evaluation.precision import bf16_capable
    from .methods.model_file import load_ensemble, model_keys

    options = EvaluationConfig.from_json(args.options)
    task, members, meta = load_ensemble(args.model, task=args.task)
    theta, x, _ = _test_pairs(args.test, options.pairs, task)
    spec = options.grid_spec(task.theta_dim)
    bins = grid_bins(options.bins, task.theta_dim, options.max_cells)
    log(f"evaluating {len(members)} members of {args.model} on {options.pairs} pairs, {describe(spec, task.theta_dim)}")
    device = pick_device(args.device)
    precision = options.grid_precision()
    if precision.mode == "bf16" and not bf16_capable(device):
        log(f"precision bf16 on {device}, which has no native bfloat16: emulated, and slower than float32")
    tables = list(evaluate(
        task, members, theta, x, bins, device=str(device), coverage=options.coverage_method,
        mc_samples=options.mc_samples, precision=precision, grid_spec=spec,
    ))
    keys = model_keys(meta)
    warn_unresolved(tables[0], keys)
    tables[0] = with_kept_epochs(tables[0], meta.get("kept_epochs"))
    _write_tables(tables, (args.metrics, args.coverage, args.ranks, args.calibration), keys)
    metrics = tables[0]
    auc = metrics[(metrics.metric == "coverage_auc") & (metrics.replicate == "ensemble")].value.iloc[0]
    log(f"ensemble coverage AUC {auc:+.3f}")


def cmd_evaluate_exact(args: argparse.Namespace) -> None:
    import pandas as pd

    from .devices import pick_device
    from .evaluation.config import EvaluationConfig
    from .evaluation.diagnostics import evaluate_exact
    from .evaluation.grids import describe
    from .tasks import get_task

    options = EvaluationConfig.from_json(args.options)
    task = get_task(args.task)
    if not task.tractable:
        raise ValueError(f"{task.name}: the likelihood is not tractable, there is no exact posterior")
    theta, x, seed = _test_pairs(args.test, options.pairs, task)
    spec = options.grid_spec(task.theta_dim)
    log(f"evaluating the exact posterior of {task.name} on {options.pairs} pairs, {describe(spec, task.theta_dim)}")
    tables = evaluate_exact(task, theta, x, options.bins, device=str(pick_device(args.device)), grid_spec=spec)
    keys = dict(task=task.name, seed=seed, method="exact")
    warn_unresolved(tables[0], keys)
    # the same rows at every budget: in the figures and tables it is the reference line
    tables = [pd.concat([t.assign(budget=b) for b in args.budgets], ignore_index=True) for t in tables]
    for t in tables:
        t.insert(0, "budget", t.pop("budget"))
    _write_tables(tables, (args.metrics, args.coverage, args.ranks, args.calibration), keys)
    auc = tables[0][tables[0].metric == "coverage_auc"].value.iloc[0]
    log(f"exact posterior coverage AUC on the grid {auc:+.3f}")


def cmd_aggregate(args: argparse.Namespace) -> None:
    from .results.aggregate import concatenate

    table = concatenate(args.tables, args.output)
    log(f"{len(table)} rows -> {args.output}")


def cmd_figures(args: argparse.Namespace) -> None:
    import pandas as pd

    from .results import figures

    summary = pd.read_csv(args.summary, dtype={"replicate": str})
    curves = pd.read_csv(args.coverage, dtype={"replicate": str})
    calibration = pd.read_csv(args.calibration, dtype={"replicate": str}) if args.calibration else None
    out = Path(args.outdir)
    formats = tuple(args.formats)
    for task in sorted(curves.task.unique()):
        figures.coverage_curves(curves, task, out / f"coverage_{task}", formats)
        if calibration is not None and task in set(calibration.task):
            figures.calibration_curves(calibration, task, out / f"calibration_{task}", formats)
    if (summary.metric == "kl_exact").any():
        figures.metric_vs_budget(summary, "kl_exact", "KL(exact ‖ estimate), nats", out / "kl_exact", formats)
    figures.metric_vs_budget(summary, "coverage_auc", "coverage AUC", out / "coverage_auc", formats)
    figures.metric_vs_budget(summary, "log_posterior", "expected log posterior", out / "log_posterior", formats, reference="log_prior")
    figures.metric_vs_budget(summary, "balancing", "balancing value", out / "balancing", formats)
    log(f"figures -> {out}")


class LazyChoices:
    """The names in ``module.attribute``, imported when first needed (to check a value or
    print help), so that building the parser imports neither torch nor h5py: the
    aggregate and figures stages run in environments without them."""

    def __init__(self, module: str, attribute: str, sort: bool = False) -> None:
        self.module, self.attribute, self.sort = module, attribute, sort

    def names(self) -> list[str]:
        import importlib

        names = list(getattr(importlib.import_module(self.module, __package__), self.attribute))
        return sorted(names) if self.sort else names

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __iter__(self):
        return iter(self.names())


def cmd_training_figures(args: argparse.Namespace) -> None:
    from .results import figures
    from .results.aggregate import read_histories

    histories = read_histories(args.histories)
    for task in sorted(histories.task.unique()):
        figures.training_curves(histories, task, Path(args.outdir) / f"training_{task}", tuple(args.formats))
        figures.penalty_curves(histories, task, Path(args.outdir) / f"penalty_{task}", tuple(args.formats))
    log(f"training curves -> {args.outdir}")


def cmd_posterior_figure(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from .evaluation.config import EvaluationConfig
    from .evaluation.infer import ensemble_log_posterior, posterior_view
    from .methods.model_file import load_ensemble, model_keys
    from .results import figures
    from .simulation.pairs import read_pairs

    options = EvaluationConfig.from_json(args.options)
    estimators, task, budget = {}, None, None
    for path in args.models:
        task, members, meta = load_ensemble(path, task=args.task)
        test = read_pairs(args.test, task=task.name, split="test", **task_shapes(task))
        if args.pair >= len(test):
            raise ValueError(f"pair {args.pair} requested but {args.test} holds {len(test)}")
        x = torch.as_tensor(test.x[args.pair : args.pair + 1])
        estimators[model_keys(meta)["method"]] = ensemble_log_posterior(members, x, task)
        budget = meta["budget"]
    theta_true = np.asarray(test.theta[args.pair])
    view = posterior_view(task, estimators, x, options.grid_spec(task.theta_dim), theta_true)
    figures.posterior_example(
        view.densities, view.lower, view.upper, theta_true, task.labels, f"{task.name}, budget {budget}",
        args.output, tuple(args.formats),
    )
    log(f"posterior example -> {args.output}")


def cmd_infer(args: argparse.Namespace) -> None:
    import pandas as pd

    from .devices import pick_device
    from .evaluation.config import EvaluationConfig
    from .evaluation.grids import describe
    from .evaluation.infer import (
        exact_posterior, interval_table, observation_names, plot_window, posterior, read_observations, sample_table,
    )
    from .methods.model_file import load_ensemble, model_keys
    from .results import figures

    options = EvaluationConfig.from_json(args.options)
    loaded = [load_ensemble(path, task=args.task) for path in args.model]
    task = loaded[0][0]
    others = {meta["task"] for _, _, meta in loaded} - {task.name}
    if others:
        raise ValueError(f"the models are of several tasks: {', '.join(sorted({task.name, *others}))}")
    x = read_observations(args.observation, task)
    names = observation_names(args.observation, len(x))
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    spec = options.grid_spec(task.theta_dim)
    device = str(pick_device(args.device))
    log(f"posteriors of {len(x)} observation(s) of {args.observation}, {describe(spec, task.theta_dim)}")
    samples, intervals, first, spans = [], [], {}, []
    for (_, members, meta), path in zip(loaded, args.model):
        keys = model_keys(meta)
        method = keys["method"]
        if method in first:
            raise ValueError(f"two models of method {method!r}: {path}")
        result = posterior(task, members, x, args.samples, seed=args.seed, device=device, grid_spec=spec)
        samples.append(_keyed(sample_table(task, result, names), keys))
        intervals.append(_keyed(interval_table(task, result, names), keys))
        first[method] = result.samples[0]
        spans.append(result.span[0])
        log(f"{method}: {len(x)} observation(s) of {args.observation}, {args.samples} draws each ({result.sampler})")
    _write_tables(
        [pd.concat(samples, ignore_index=True), pd.concat(intervals, ignore_index=True)],
        (args.samples_output, args.intervals_output), {},
    )
    if args.figure:
        if task.tractable:
            exact = exact_posterior(task, x[:1], args.samples, spec, seed=args.seed, device=device)
            first["exact"] = exact.samples[0]
            spans.append(exact.span[0])
        lower, upper = plot_window(spans, task.lower, task.upper)
        figures.corner(first, lower, upper, task.labels, f"{task.name}: {names[0]}", args.figure, tuple(args.formats))
    log(f"posterior draws -> {args.samples_output}, intervals -> {args.intervals_output}")


def cmd_tasks(args: argparse.Namespace) -> None:
    from .tasks import TASKS, entry_points, get_task
    from .tasks.plugins import origin

    if not args.sources:
        for name in sorted(TASKS):
            log(name)
        for name, point in sorted(entry_points().items()):
            log(f"{name} ({point.value}, installed)")
        return
    if args.observations:
        if len(args.sources) != 1:
            raise ValueError("--observations checks the files of one task: give exactly one TASK")
        from .evaluation.infer import read_observations

        task = get_task(args.sources[0])
        for path in args.observations:
            read_observations(path, task)  # refuses a wrong shape or non-finite values, naming file and rows
    described = []
    for source in args.sources:
        task = get_task(source)
        described.append(dict(
            source=source, name=task.name, theta_dim=task.theta_dim, x_shape=list(task.x_shape),
            labels=list(task.labels), tractable=task.tractable, origin=origin(task),
        ))
    print(json.dumps(described, indent=1))


def cmd_tables(args: argparse.Namespace) -> None:
    import pandas as pd

    from .results.tables import summary_markdown

    print(summary_markdown(pd.read_csv(args.summary, dtype={"replicate": str})))


TASK_HELP = (
    "a built-in task (python -m bnre tasks lists them), an installed plugin's name,"
    " or [NAME=]module:Class or [NAME=]path/to/file.py:Class"
)

EVALUATION_OPTIONS_HELP = (
    "JSON object of evaluation options: the posterior grid, the test pairs, how ranks are"
    " computed (see bnre.evaluation.config.EvaluationConfig; defaults as the workflow's)"
)


def warn_unresolved(metrics, keys: dict, threshold: float = 0.01) -> None:
    """Log a warning naming task, method and budget where more than ``threshold`` of the
    pairs have a rank that the grid does not resolve."""
    rows = metrics[metrics.metric == "unresolved_fraction"]
    bad = rows[rows.value > threshold]
    if len(bad):
        which = ", ".join(f"{r} {v:.1%}" for r, v in zip(bad.replicate, bad.value))
        where = " ".join(f"{k} {v}" for k, v in keys.items())
        log(
            f"WARNING: {where}: the grid does not resolve the rank of more than {threshold:.0%} of the pairs "
            f"({which}); refine it (evaluate.refine_cells, refine_depth) or check the estimator"
        )


ONE_OF = "one of: %(choices)s"
DEVICE_HELP = "auto (CUDA when available; the default), cpu, cuda"


def args_simulate(sub) -> None:
    """The arguments of ``bnre simulate``."""
    s = sub.add_parser("simulate", help="simulate one block of pairs into HDF5")
    s.add_argument("--task", required=True, metavar="TASK", help=TASK_HELP)
    s.add_argument("--split", required=True, choices=LazyChoices(".simulation.simulate", "SPLITS"), metavar="SPLIT", help=ONE_OF)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--start", type=int, required=True)
    s.add_argument("--stop", type=int, required=True)
    s.add_argument("--output", required=True)
    s.set_defaults(run=cmd_simulate)


def args_merge(sub) -> None:
    """The arguments of ``bnre merge``."""
    s = sub.add_parser("merge", help="merge contiguous block files")
    s.add_argument("--output", required=True)
    s.add_argument("blocks", nargs="+")
    s.set_defaults(run=cmd_merge)


def args_train(sub) -> None:
    """The arguments of ``bnre train``."""
    s = sub.add_parser("train", help="train the members of one ensemble")
    s.add_argument("--task", required=True, metavar="TASK", help=TASK_HELP)
    s.add_argument("--method", required=True, choices=LazyChoices(".methods", "METHODS"), metavar="METHOD", help=ONE_OF)
    s.add_argument("--budget", type=int, required=True)
    s.add_argument("--train", required=True)
    s.add_argument("--val", required=True)
    s.add_argument("--options", default="{}", help="JSON object of training options (see bnre.methods.config.TrainConfig)")
    s.add_argument("--model", required=True)
    s.add_argument("--history", required=True)
    s.add_argument("--checkpoint", help="training state, for resuming (default: MODEL.checkpoint)")
    s.add_argument("--checkpoint-seconds", type=float, help="minimum seconds between checkpoints (overrides --options)")
    s.add_argument("--memory-limit-mb", type=float, help="largest x held in memory before streaming (overrides --options)")
    s.set_defaults(run=cmd_train)


def args_evaluate(sub) -> None:
    """The arguments of ``bnre evaluate``."""
    s = sub.add_parser("evaluate", help="coverage, log posterior and balancing of a model file")
    s.add_argument("--model", required=True)
    s.add_argument("--task", metavar="TASK", help="the model's task: refuse a model of another one (" + TASK_HELP + ")")
    s.add_argument("--test", required=True)
    s.add_argument("--options", default="{}", help=EVALUATION_OPTIONS_HELP)
    s.add_argument("--metrics", required=True)
    s.add_argument("--coverage", required=True)
    s.add_argument("--ranks", required=True)
    s.add_argument("--calibration", required=True, help="SBC, marginal HPD and TARP curves (tidy CSV)")
    s.add_argument("--device", help=DEVICE_HELP)
    s.set_defaults(run=cmd_evaluate)


def args_evaluate_exact(sub) -> None:
    """The arguments of ``bnre evaluate-exact``."""
    s = sub.add_parser("evaluate-exact", help="the same diagnostics for the exact posterior of a tractable task")
    s.add_argument("--task", required=True, metavar="TASK", help=TASK_HELP)
    s.add_argument("--test", required=True)
    s.add_argument("--options", default="{}", help=EVALUATION_OPTIONS_HELP)
    s.add_argument("--budgets", type=int, nargs="+", required=True, help="budgets whose rows the exact posterior's repeat")
    s.add_argument("--metrics", required=True)
    s.add_argument("--coverage", required=True)
    s.add_argument("--ranks", required=True)
    s.add_argument("--calibration", required=True)
    s.add_argument("--device", help=DEVICE_HELP)
    s.set_defaults(run=cmd_evaluate_exact)


def args_aggregate(sub) -> None:
    """The arguments of ``bnre aggregate``."""
    s = sub.add_parser("aggregate", help="concatenate tidy tables")
    s.add_argument("--output", required=True)
    s.add_argument("tables", nargs="+")
    s.set_defaults(run=cmd_aggregate)


def args_figures(sub) -> None:
    """The arguments of ``bnre figures``."""
    s = sub.add_parser("figures", help="draw the result figures")
    s.add_argument("--summary", required=True)
    s.add_argument("--coverage", required=True)
    s.add_argument("--calibration", help="results/calibration.csv: also draw the calibration figures")
    s.add_argument("--outdir", required=True)
    s.add_argument("--formats", nargs="+", required=True, metavar="FORMAT", help="figure formats, e.g. png pdf svg")
    s.set_defaults(run=cmd_figures)


def args_training_figures(sub) -> None:
    """The arguments of ``bnre training-figures``."""
    s = sub.add_parser("training-figures", help="draw validation-loss curves from training histories")
    s.add_argument("--outdir", required=True)
    s.add_argument("--formats", nargs="+", required=True, metavar="FORMAT", help="figure formats, e.g. png pdf svg")
    s.add_argument("histories", nargs="+", help="models/{task}/{method}/{budget}.history.csv files")
    s.set_defaults(run=cmd_training_figures)


def args_posterior_figure(sub) -> None:
    """The arguments of ``bnre posterior-figure``."""
    s = sub.add_parser("posterior-figure", help="posterior of one test observation, per model file (and the exact one)")
    s.add_argument("--test", required=True)
    s.add_argument("--pair", type=int, required=True, help="index of the test pair")
    s.add_argument("--options", default="{}", help=EVALUATION_OPTIONS_HELP)
    s.add_argument("--output", required=True, help="output path without extension")
    s.add_argument("models", nargs="+", help="model files (e.g. the NRE and BNRE ensembles of one budget)")
    s.add_argument("--formats", nargs="+", required=True, metavar="FORMAT", help="figure formats, e.g. png pdf svg")
    s.add_argument("--task", metavar="TASK", help="the models' task (" + TASK_HELP + "; default: the model files')")
    s.set_defaults(run=cmd_posterior_figure)


def args_infer(sub) -> None:
    """The arguments of ``bnre infer``."""
    s = sub.add_parser("infer", help="posterior draws and credible intervals of observed data, per model file")
    s.add_argument("--model", required=True, nargs="+", help="model files (e.g. the NRE and BNRE ensembles of one budget)")
    s.add_argument("--observation", required=True, help=".npy, .csv (one flattened observation per row) or HDF5 with x")
    s.add_argument("--task", metavar="TASK", help="the models' task (" + TASK_HELP + "; default: the model files')")
    s.add_argument("--samples", type=int, required=True, help="posterior draws per observation and model")
    s.add_argument("--options", default="{}", help=EVALUATION_OPTIONS_HELP)  # grid up to 3 parameters; MCMC beyond
    s.add_argument("--seed", type=int, required=True, help="seed of the draws")
    s.add_argument("--device", help=DEVICE_HELP)
    s.add_argument("--samples-output", required=True, help="tidy CSV of the draws")
    s.add_argument("--intervals-output", required=True, help="tidy CSV of the 50/90/95%% marginal central intervals")
    s.add_argument("--figure", help="corner plot of the file's first observation (path without extension)")
    s.add_argument("--formats", nargs="+", required=True, metavar="FORMAT", help="figure formats, e.g. png pdf svg")
    s.set_defaults(run=cmd_infer)


def args_tasks(sub) -> None:
    """The arguments of ``bnre tasks``."""
    s = sub.add_parser("tasks", help="list the tasks, or load and check the given ones (JSON)")
    s.add_argument("sources", nargs="*", metavar="TASK", help=TASK_HELP)
    s.add_argument("--observations", nargs="+", default=[], metavar="FILE", help="check observation files of the task (shape, finite values)")
    s.set_defaults(run=cmd_tasks)


def args_tables(sub) -> None:
    """The arguments of ``bnre tables``."""
    s = sub.add_parser("tables", help="markdown tables of results/summary.csv")
    s.add_argument("summary")
    s.set_defaults(run=cmd_tables)


def parser() -> argparse.ArgumentParser:
    """The command line: each command's arguments come from its ``args_*`` function, so that
    a job's code hash (:mod:`bnre.workflow.sourcegraph`) counts its own command's only."""
    p = argparse.ArgumentParser(prog="bnre", description=__doc__)
    p.add_argument("--threads", type=int, help="CPU threads for torch and BLAS (default: the libraries' own, all cores)")
    sub = p.add_subparsers(dest="command", required=True)
    args_simulate(sub)
    args_merge(sub)
    args_train(sub)
    args_evaluate(sub)
    args_evaluate_exact(sub)
    args_aggregate(sub)
    args_figures(sub)
    args_training_figures(sub)
    args_posterior_figure(sub)
    args_infer(sub)
    args_tasks(sub)
    args_tables(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Limit threads before numpy and torch are first imported (by the full parser).
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--threads", type=int)
    known, _ = early.parse_known_args(sys.argv[1:] if argv is None else argv)
    set_threads(known.threads)
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FloatingPointError, FileNotFoundError, RuntimeError) as error:
        print(f"bnre {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
