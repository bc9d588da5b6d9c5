"""What each job is given: its training options, its grid options and its code hash, each
a tracked parameter of its rule, so that a change re-runs exactly the jobs it concerns."""

from __future__ import annotations

import json
from pathlib import Path

from ..registry import methods as method_registry
from . import sourcegraph
from .settings import METHOD_OPTIONS, method_base, task_train_options


def train_options(config: dict, task: str, method: str, seed: int) -> str:
    """The options that define the model of ``method`` on ``task`` for root ``seed``, as the JSON that
    :class:`bnre.methods.config.TrainConfig` reads: the execution options left out, the options of
    other methods neutral or left out (so that changing them re-runs nothing here)."""
    options = task_train_options(config, task, method)
    for key in method_registry.EXECUTION_OPTIONS:
        del options[key]
    base = method_base(config, method)
    for key, methods in METHOD_OPTIONS.items():  # options the method ignores
        if base not in methods:
            if key in method_registry.NEUTRAL_OPTIONS:
                options[key] = method_registry.NEUTRAL_OPTIONS[key]
            else:
                del options[key]
    options = {method_registry.field(key): value for key, value in options.items()}
    options.update(replicates=config["replicates"], seed=seed, method=base, name=method)
    return json.dumps(options, sort_keys=True)


#: The evaluation options each grid reads, and those each command reads besides its grid's
#: (:class:`bnre.evaluation.config.EvaluationConfig`): a setting no job reads re-runs nothing.
GRID_OPTIONS = {
    "adaptive": ("coarse_bins", "refine_cells", "refine_depth", "refine_tolerance"),
    "uniform": ("bins", "max_cells"),
}
COMMAND_OPTIONS = {
    "evaluate": {"any": ("pairs", "coverage_method", "mc_samples"),
                 "uniform": ("precision", "precision_delta", "precision_tolerance")},
    "evaluate-exact": {"any": ("pairs",)},
    "posterior-figure": {},
    "infer": {},
}


def evaluation_options(config: dict, command: str) -> str:
    """The JSON object of evaluation options that ``python -m bnre <command> --options``
    reads: the chosen grid's and the command's own, so that other settings re-run nothing."""
    e = config["evaluate"]
    own = COMMAND_OPTIONS[command]
    keys = ("grid", *GRID_OPTIONS[e["grid"]], *own.get("any", ()), *own.get(e["grid"], ()))
    return json.dumps({key: e[key] for key in keys}, sort_keys=True)


def code_hash(commands: tuple[str, ...], task: str | None, plugins: dict, package: Path) -> str:
    """The hash of what ``python -m bnre <command>`` runs for each of ``commands`` on
    ``task`` (:func:`bnre.workflow.sourcegraph.code_hash`), and of the task's plugin file if it has one."""
    code = sourcegraph.code_hash(commands, task, package)
    if task not in plugins:
        return code
    _, file, cls = plugins[task]
    return f"{code}+{sourcegraph.plugin_code_hash(file, cls, commands)}"
