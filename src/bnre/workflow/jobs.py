"""What each job is given: its training options, its grid options and its code hash, each
a tracked parameter of its rule, so that a change re-runs exactly the jobs it concerns."""

from __future__ import annotations

import json
from pathlib import Path

from .. import sourcegraph
from ..registry import methods as method_registry
from .settings import METHOD_OPTIONS, method_base, task_train_options


def train_options(config: dict, task: str, method: str) -> str:
    """The options that define the model of ``method`` on ``task``, as the JSON that
    :class:`bnre.config.TrainConfig` reads: the execution options left out, the options of
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
    options.update(replicates=config["replicates"], seed=config["seed"], method=base, name=method)
    return json.dumps(options, sort_keys=True)


def grid_options(config: dict) -> str:
    """The posterior grid's command-line options (``python -m bnre evaluate --help``): only
    the chosen grid's, so that the other grid's settings re-run nothing."""
    e = config["evaluate"]
    if e["grid"] == "uniform":
        return f"--grid uniform --bins {e['bins']} --max-cells {e['max_cells']}"
    cells = "" if e["refine_cells"] is None else f" --refine-cells {e['refine_cells']}"
    return (
        f"--grid adaptive --coarse-bins {e['coarse_bins']}{cells}"
        f" --refine-depth {e['refine_depth']} --refine-tolerance {e['refine_tolerance']}"
    )


def code_hash(commands: tuple[str, ...], task: str | None, plugins: dict, package: Path) -> str:
    """The hash of what ``python -m bnre <command>`` runs for each of ``commands`` on
    ``task`` (:func:`bnre.sourcegraph.code_hash`), and of the task's plugin file if it has one."""
    code = sourcegraph.code_hash(commands, task, package)
    if task not in plugins:
        return code
    _, file, cls = plugins[task]
    return f"{code}+{sourcegraph.plugin_code_hash(file, cls, commands)}"
