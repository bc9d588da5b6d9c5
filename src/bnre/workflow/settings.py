"""The config's cross-key checks, and the tasks, plugins and observation files it names.

Each function takes the validated config (the schema's defaults filled in); the paths of
the config files, where a function looks up files relative to them; and ``src``, the
package's source folder, where a check runs the package in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..registry import methods as method_registry
from ..registry import tasks as task_registry
from . import ConfigError

#: The methods of the package.
BASE_METHODS = tuple(method_registry.METHODS)

#: The training options that only some methods use -> the methods that use them.
METHOD_OPTIONS = {
    key: {name for name, m in method_registry.METHODS.items() if key in m.options}
    for key in sorted(method_registry.METHOD_OPTIONS)
}

#: The built-in tasks, and those whose exact posterior is evaluated beside the estimators.
BUILTIN_TASKS = tuple(task_registry.TASKS)
BUILTIN_TRACTABLE = tuple(name for name, task in task_registry.TASKS.items() if task.tractable)

#: Tasks whose simulator needs an optional extra (the registry's ``needs``): their own
#: conda environment for the simulation jobs (relative to ``rules/``), and the importable
#: module that must be present without conda.
OPTIONAL_TASKS = {
    name: {
        "env": f"../envs/simulate_{name}.yaml",
        "module": task.needs[0],
        "install": f'pip install "bnre-workflow[{task.needs[1]}]"',
    }
    for name, task in task_registry.TASKS.items()
    if task.needs
}

#: The entry-point group in which installed packages register tasks.
PLUGIN_GROUP = "bnre.tasks"


def method_base(config: dict, method: str) -> str:
    """The method a variant is built on (a method is its own base)."""
    return config["variants"][method]["base"] if method in config["variants"] else method


def task_train_options(config: dict, task: str, method: str | None = None) -> dict:
    """The ``train`` options of a task (and method): the defaults, then the task's
    ``train.tasks`` overrides, then the variant's ``train`` overrides."""
    options = {k: v for k, v in config["train"].items() if k != "tasks"}
    options.update(config["train"]["tasks"].get(task, {}))
    if method in config["variants"]:
        options.update(config["variants"][method].get("train", {}))
    return options


def resolve_seeds(config: dict, user_files: dict[str, dict], command_line: dict) -> list[int]:
    """The study's root seeds, each an axis of the DAG: ``seeds``, or ``[seed]`` where the
    user gives the single ``seed`` of older configs.

    ``user_files`` maps each of the user's own config files to what it holds, and
    ``command_line`` is what ``--config`` gives (it takes precedence): a ``seed`` given
    there takes the place of the default config's ``seeds``. Giving both in one place, or
    both across the user's files, is refused, as are an empty list, a duplicate and a
    negative seed, each naming the key.
    """
    sources = {"--config": command_line} if {"seed", "seeds"} & set(command_line) else user_files
    with_seed = [name for name, values in sources.items() if "seed" in (values or {})]
    with_seeds = [name for name, values in sources.items() if "seeds" in (values or {})]
    if with_seed and with_seeds:
        raise ConfigError(
            f"config: seed (in {', '.join(with_seed)}) and seeds (in {', '.join(with_seeds)}) are both given; "
            "give seeds only (seed: N means seeds: [N])"
        )
    if with_seed or ("seed" in config and not with_seeds):
        seeds, key = [config["seed"]], "seed"
    else:
        seeds, key = config.get("seeds", [1]), "seeds"
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"config: {key} must be a non-empty list of seeds, got {seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"config: {key}: {seed!r} is not a seed (an integer >= 0)")
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicates:
        raise ConfigError(f"config: {key}: seed(s) {duplicates} given more than once; each seed is one run of the study")
    return list(seeds)


def check_config(config: dict) -> None:
    """Cross-key checks the JSON schema cannot express."""
    unknown = [m for m in config["methods"] if m not in BASE_METHODS and m not in config["variants"]]
    if unknown:
        raise ConfigError(
            f"config: methods {unknown} are neither methods ({', '.join(BASE_METHODS)}) "
            f"nor variants (under `variants:`: {', '.join(config['variants']) or 'none'})"
        )
    for name, variant in config["variants"].items():
        if name in BASE_METHODS or name in method_registry.RESERVED_NAMES:
            raise ConfigError(
                f"config: variants.{name}: {name!r} is the name of a method or of the exact posterior "
                f"({', '.join(BASE_METHODS + method_registry.RESERVED_NAMES)}); a variant needs a name of its own"
            )
        if variant["base"] not in BASE_METHODS:
            raise ConfigError(
                f"config: variants.{name}.base: {variant['base']!r} is not one of the methods ({', '.join(BASE_METHODS)})"
            )
    sim = config["simulation"]
    too_large = [b for b in config["budgets"] if b > sim["train"]]
    if too_large:
        raise ConfigError(
            f"config: budgets {too_large} exceed simulation.train = {sim['train']} (the training pool each budget is drawn from)"
        )
    evaluation = config["evaluate"]
    if evaluation["refine_cells"] is not None and evaluation["refine_cells"] < 2 * evaluation["coarse_bins"]:
        raise ConfigError(
            f"config: evaluate.refine_cells = {evaluation['refine_cells']} cannot hold the coarse grid of "
            f"evaluate.coarse_bins = {evaluation['coarse_bins']} and its refinement: it must be at least 2 * coarse_bins"
        )
    if evaluation["pairs"] > sim["test"]:
        raise ConfigError(
            f"config: evaluate.pairs = {evaluation['pairs']} exceeds simulation.test = {sim['test']} (the test pairs available)"
        )


def check_method_options(config: dict) -> None:
    """Refuse, naming the key, options of another method in a variant, and options a
    method cannot train with (:func:`bnre.registry.methods.check_options`)."""
    for name, variant in config["variants"].items():
        base = variant["base"]
        wrong = sorted(k for k in variant.get("train", {}) if base not in METHOD_OPTIONS.get(k, BASE_METHODS))
        if wrong:
            uses = "; ".join(f"{k} is an option of {', '.join(sorted(METHOD_OPTIONS[k]))} only" for k in wrong)
            raise ConfigError(
                f"config: variants.{name}.train sets {', '.join(wrong)}, which its base method {base} does not use ({uses})"
            )
    for method in config["methods"]:
        for task in config["tasks"]:
            problem = method_registry.check_options(method_base(config, method), task_train_options(config, task, method))
            if problem:
                raise ConfigError(f"config: method {method} on task {task}: {problem}")
    if not any(method_base(config, m) in method_registry.DCP_METHODS for m in config["methods"]):
        for task in config["tasks"]:
            options = task_train_options(config, task)
            given = [f"{k} = {options[k]!r}" for k, v in sorted(method_registry.DCP_DEFAULTS.items()) if options.get(k, v) != v]
            if given:
                raise ConfigError(
                    f"config: train sets {', '.join(given)} (for task {task}), an option of the calibration regulariser "
                    f"({', '.join(method_registry.DCP_METHODS)} only), but none of the methods "
                    f"({', '.join(config['methods'])}) has one"
                )


def check_optional_tasks(config: dict, conda: bool) -> None:
    """Refuse a task whose simulator is not installed, unless the jobs run in their conda
    environments (``conda``), which install it."""
    if conda:
        return
    for task in config["tasks"]:
        extra = OPTIONAL_TASKS.get(task)
        if extra and importlib.util.find_spec(extra["module"]) is None:
            raise ConfigError(
                f"config: task {task!r} needs the {extra['module']} module, which is not installed: run "
                f"`{extra['install']}`, or use --sdm conda ({extra['env'].removeprefix('../')})"
            )


def installed_tasks() -> dict[str, str]:
    """name -> ``module:Class`` of the tasks installed packages register."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)}


def config_file(key: str, name: str, config_files: Sequence[str | os.PathLike]) -> Path:
    """The file ``name`` of config key ``key``: an absolute path, or one relative to a
    config file (the last given first), else to the working directory."""
    bases = [Path(f).resolve().parent for f in reversed(list(config_files))]
    candidates = [base / name for base in bases] + [Path.cwd() / name]
    found = [c for c in candidates if c.is_file()]
    if not found:
        tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
        raise ConfigError(f"config: {key}: no file {name} (tried {tried})")
    return found[0].resolve()


def plugin_file(name: str, target: str, config_files: Sequence) -> tuple[Path, str]:
    """(file, class) of a plugin's ``module:Class`` or ``path/to/file.py:Class``; a relative
    path is looked up next to each config file, then in the working directory."""
    where, _, cls = target.rpartition(":")
    if where.endswith(".py"):
        return config_file(f"plugins.{name}", where, config_files), cls
    sys.path.insert(0, str(Path.cwd()))
    try:
        spec = importlib.util.find_spec(where)
    except (ImportError, ValueError) as error:
        spec, reason = None, f" ({error})"
    else:
        reason = ""
    finally:
        sys.path.remove(str(Path.cwd()))
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ConfigError(f"config: plugins.{name}: module {where!r} is not importable{reason}")
    return Path(spec.origin), cls


def task_plugins(config: dict, config_files: Sequence) -> dict[str, tuple[str, Path, str]]:
    """Plugin task name -> (source the jobs load it from, file, class)."""
    installed = installed_tasks()
    clash = sorted(set(config["plugins"]) & set(BUILTIN_TASKS))
    if clash:
        raise ConfigError(f"config: plugins {clash} are names of built-in tasks; name them otherwise")
    plugins = {}
    for task in config["tasks"]:
        if task in BUILTIN_TASKS:
            continue
        if task in config["plugins"]:
            file, cls = plugin_file(task, config["plugins"][task], config_files)
            where = config["plugins"][task].rpartition(":")[0]
            target = f"{file}:{cls}" if where.endswith(".py") else config["plugins"][task]
            plugins[task] = (f"{task}={target}", file, cls)
        elif task in installed:
            where, _, cls = installed[task].partition(":")
            file, cls = plugin_file(task, f"{where}:{cls}", config_files)
            plugins[task] = (task, file, cls)
        else:
            raise ConfigError(
                f"config: task {task!r} is neither built-in ({', '.join(BUILTIN_TASKS)}), nor under `plugins:`, "
                f"nor installed (entry points {PLUGIN_GROUP}: {', '.join(sorted(installed)) or 'none'})"
            )
    return plugins


def check_task_overrides(config: dict, plugins: dict) -> None:
    """Refuse per-task overrides (``train.tasks``, ``resources.<rule>.tasks``) of unknown tasks."""
    known = set(BUILTIN_TASKS) | set(config["plugins"]) | set(plugins) | set(installed_tasks())
    overrides = {"train.tasks": config["train"]["tasks"]}
    for rule, settings in config["resources"].items():
        overrides[f"resources.{rule}.tasks"] = settings["tasks"]
    for key, tasks in overrides.items():
        unknown = sorted(set(tasks) - known)
        if unknown:
            raise ConfigError(
                f"config: {key}: {unknown} are not tasks (built-in: {', '.join(BUILTIN_TASKS)}; "
                f"plugins: {', '.join(sorted(known - set(BUILTIN_TASKS))) or 'none'})"
            )


def _run_package(src: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bnre", *arguments],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
    )


def describe_plugins(plugins: dict, src: Path) -> dict[str, dict]:
    """Load and check each plugin task in a subprocess (``python -m bnre tasks``), so that a
    plugin that does not import or is not a task stops the run before any job; the
    description says which ones have an exact likelihood. Skipped where the package's
    dependencies are not installed (e.g. next to a Snakemake run with --sdm conda)."""
    if not plugins or importlib.util.find_spec("torch") is None:
        return {}
    done = _run_package(src, "tasks", *(source for source, _, _ in plugins.values()))
    if done.returncode:
        raise ConfigError(f"config: {done.stderr.strip() or done.stdout.strip()}")
    return {d["name"]: d for d in json.loads(done.stdout)}


def observation_files(config: dict, config_files: Sequence) -> dict[str, dict[str, Path]]:
    """Task -> {observation name (the file's stem): its absolute path}."""
    files = {}
    for task, names in config["observations"].items():
        if task not in config["tasks"]:
            raise ConfigError(f"config: observations.{task}: {task!r} is not one of `tasks`")
        stems = [Path(name).stem for name in names]
        repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
        if repeated:
            raise ConfigError(f"config: observations.{task}: several files are named {repeated} (their stems name the outputs)")
        files[task] = {Path(name).stem: config_file(f"observations.{task}", name, config_files) for name in names}
    budget = config["infer"]["budget"]
    if files and budget is not None and budget not in config["budgets"]:
        raise ConfigError(f"config: infer.budget = {budget} is not one of `budgets` {config['budgets']}")
    return files


def check_observations(observations: dict, plugins: dict, src: Path) -> None:
    """Read every observation file for its task in a subprocess (``python -m bnre tasks
    TASK --observations ...``), so that a wrong shape or a NaN stops the run before any job,
    not at the infer job after hours of simulation and training; skipped where the
    package's dependencies are not installed, as for the plugins."""
    if not observations or importlib.util.find_spec("torch") is None:
        return
    for task, files in observations.items():
        source = plugins.get(task, (task,))[0]
        done = _run_package(src, "tasks", source, "--observations", *(str(path) for path in files.values()))
        if done.returncode:
            raise ConfigError(f"config: observations.{task}: {done.stderr.strip() or done.stdout.strip()}")
