"""Configuration validation and path helpers shared by every rule."""

import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import min_version, validate

min_version("9.0")


# The checkout, found from this file, not from the main Snakefile, so that another project
# can use the workflow as a module (`module bnre: snakefile: ...`).
ROOT = Path(str(workflow.current_basedir)).parent
SRC = ROOT / "src"


def package_module(name):
    """A standard-library-only module of the package, loaded from its file (nothing else of
    the package is imported here: its dependencies may not be installed next to Snakemake).
    """
    spec = importlib.util.spec_from_file_location(
        f"bnre_{name.replace('.', '_')}", SRC / "bnre" / f"{name.replace('.', '/')}.py"
    )
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


# What the package and the workflow both know (bnre.registry): methods and their options,
# built-in tasks, which are tractable, and the options that do not change a model.
method_registry = package_module("registry.methods")
task_registry = package_module("registry.tasks")


def schema_at(root, schema):
    """The schema itself, with its local `$ref`s (`#/a/b`) followed."""
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise WorkflowError(
                f"config/schema.yaml: only local $refs are supported, not {ref!r}"
            )
        schema = root
        for part in ref[2:].split("/"):
            schema = schema[part]
    return schema


def read_as_schema_type(text, types):
    """`text` read as the first of the schema's `types` it spells, or itself."""
    if "string" in types:
        return text
    for kind in types:
        if kind == "integer" and re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            return int(text)
        if kind == "number":
            try:
                return float(text)
            except ValueError:
                pass
        if kind == "boolean" and text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        if kind == "null" and text.strip() in ("null", "~"):
            return None
    return text


def command_line_typed(value, schema, root):
    """`value` with the strings that Snakemake's `--config` makes of YAML's scalars read as
    the schema's types: `--config budgets=[1024]` or `'train={hidden: [64, 64]}'` parse with
    YAML's base loader, which reads every item of a list or a mapping as a string. Strings
    that spell no type the schema allows are left for `validate` to refuse, naming the key.
    """
    schema = schema_at(root, schema)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            key: command_line_typed(
                item,
                properties.get(key, extra if isinstance(extra, dict) else {}),
                root,
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items", {})
        return [command_line_typed(item, items, root) for item in value]
    if isinstance(value, str):
        types = schema.get("type", [])
        return read_as_schema_type(value, [types] if isinstance(types, str) else types)
    return value


CONFIG_SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
config.update(command_line_typed(config, CONFIG_SCHEMA, CONFIG_SCHEMA))
validate(config, schema="../config/schema.yaml")


BASE_METHODS = tuple(method_registry.METHODS)
# The training options that only some methods use -> the methods that use them: a variant
# of another method may not set them, and they are left out of (or neutral in) the options
# of the methods that ignore them, so that changing one re-runs only the methods using it.
METHOD_OPTIONS = {
    key: {name for name, m in method_registry.METHODS.items() if key in m.options}
    for key in sorted(method_registry.METHOD_OPTIONS)
}


def check_config(config):
    """Cross-key checks the JSON schema cannot express."""
    unknown = [
        m
        for m in config["methods"]
        if m not in BASE_METHODS and m not in config["variants"]
    ]
    if unknown:
        raise WorkflowError(
            f"config: methods {unknown} are neither methods ({', '.join(BASE_METHODS)}) "
            f"nor variants (under `variants:`: {', '.join(config['variants']) or 'none'})"
        )
    for name, variant in config["variants"].items():
        if name in BASE_METHODS or name in method_registry.RESERVED_NAMES:
            raise WorkflowError(
                f"config: variants.{name}: {name!r} is the name of a method or of the "
                f"exact posterior ({', '.join(BASE_METHODS + method_registry.RESERVED_NAMES)});"
                " a variant needs a name of its own"
            )
        if variant["base"] not in BASE_METHODS:
            raise WorkflowError(
                f"config: variants.{name}.base: {variant['base']!r} is not one of the "
                f"methods ({', '.join(BASE_METHODS)})"
            )
    sim = config["simulation"]
    too_large = [b for b in config["budgets"] if b > sim["train"]]
    if too_large:
        raise WorkflowError(
            f"config: budgets {too_large} exceed simulation.train = {sim['train']} "
            "(the training pool each budget is drawn from)"
        )
    evaluation = config["evaluate"]
    if (
        evaluation["refine_cells"] is not None
        and evaluation["refine_cells"] < 2 * evaluation["coarse_bins"]
    ):
        raise WorkflowError(
            f"config: evaluate.refine_cells = {evaluation['refine_cells']} cannot hold the "
            f"coarse grid of evaluate.coarse_bins = {evaluation['coarse_bins']} and its "
            "refinement: it must be at least 2 * coarse_bins"
        )
    if config["evaluate"]["pairs"] > sim["test"]:
        raise WorkflowError(
            f"config: evaluate.pairs = {config['evaluate']['pairs']} exceeds "
            f"simulation.test = {sim['test']} (the test pairs available)"
        )


check_config(config)

# Tasks whose simulator needs an optional extra (the registry's `needs`): their own conda
# environment for the simulation jobs, and the importable module that must be present
# without conda.
OPTIONAL_TASKS = {
    name: {
        "env": f"../envs/simulate_{name}.yaml",
        "module": task.needs[0],
        "install": f'pip install "bnre-workflow[{task.needs[1]}]"',
    }
    for name, task in task_registry.TASKS.items()
    if task.needs
}


def check_optional_tasks(config):
    """Refuse, before any job runs, a task whose simulator is not installed (without conda)."""
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        return
    for task in config["tasks"]:
        extra = OPTIONAL_TASKS.get(task)
        if extra and importlib.util.find_spec(extra["module"]) is None:
            raise WorkflowError(
                f"config: task {task!r} needs the {extra['module']} module, which is not "
                f"installed: run `{extra['install']}`, or use --sdm conda "
                f"({extra['env'].removeprefix('../')})"
            )


def simulate_env(wildcards):
    """The simulation jobs' conda environment: the task's own one where it has one."""
    return OPTIONAL_TASKS.get(wildcards.task, {}).get("env", "../envs/simulate.yaml")


check_optional_tasks(config)

# Tasks: built-in (bnre.registry.tasks), the config's `plugins`, and those installed
# packages register in the entry-point group bnre.tasks.
BUILTIN_TASKS = tuple(task_registry.TASKS)
PLUGIN_GROUP = "bnre.tasks"


def installed_tasks():
    """name -> `module:Class` of the tasks installed packages register."""
    return {
        ep.name: ep.value for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)
    }


def config_file(key, name):
    """The file `name` of config key `key`: an absolute path, or one relative to a config
    file (the last given first), else to the working directory."""
    bases = [Path(f).resolve().parent for f in reversed(workflow.configfiles)]
    candidates = [base / name for base in bases] + [Path.cwd() / name]
    found = [c for c in candidates if c.is_file()]
    if not found:
        tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
        raise WorkflowError(f"config: {key}: no file {name} (tried {tried})")
    return found[0].resolve()


def plugin_file(name, target):
    """(file, class) of a plugin's `module:Class` or `path/to/file.py:Class`; a relative
    path is looked up next to each config file, then in the working directory."""
    where, _, cls = target.rpartition(":")
    if where.endswith(".py"):
        return config_file(f"plugins.{name}", where), cls
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
        raise WorkflowError(
            f"config: plugins.{name}: module {where!r} is not importable{reason}"
        )
    return Path(spec.origin), cls


def task_plugins(config):
    """Plugin task name -> (source the jobs load it from, file, class)."""
    installed = installed_tasks()
    clash = sorted(set(config["plugins"]) & set(BUILTIN_TASKS))
    if clash:
        raise WorkflowError(
            f"config: plugins {clash} are names of built-in tasks; name them otherwise"
        )
    plugins = {}
    for task in config["tasks"]:
        if task in BUILTIN_TASKS:
            continue
        if task in config["plugins"]:
            file, cls = plugin_file(task, config["plugins"][task])
            where = config["plugins"][task].rpartition(":")[0]
            target = (
                f"{file}:{cls}" if where.endswith(".py") else config["plugins"][task]
            )
            plugins[task] = (f"{task}={target}", file, cls)
        elif task in installed:
            where, _, cls = installed[task].partition(":")
            file, cls = plugin_file(task, f"{where}:{cls}")
            plugins[task] = (task, file, cls)
        else:
            raise WorkflowError(
                f"config: task {task!r} is neither built-in ({', '.join(BUILTIN_TASKS)}),"
                f" nor under `plugins:`, nor installed (entry points {PLUGIN_GROUP}: "
                f"{', '.join(sorted(installed)) or 'none'})"
            )
    return plugins


def check_task_overrides(config, plugins):
    """Refuse per-task overrides (`train.tasks`, `resources.<rule>.tasks`) of unknown tasks."""
    known = (
        set(BUILTIN_TASKS)
        | set(config["plugins"])
        | set(plugins)
        | set(installed_tasks())
    )
    overrides = {"train.tasks": config["train"]["tasks"]}
    for rule, settings in config["resources"].items():
        overrides[f"resources.{rule}.tasks"] = settings["tasks"]
    for key, tasks in overrides.items():
        unknown = sorted(set(tasks) - known)
        if unknown:
            raise WorkflowError(
                f"config: {key}: {unknown} are not tasks (built-in: "
                f"{', '.join(BUILTIN_TASKS)}; plugins: {', '.join(sorted(known - set(BUILTIN_TASKS))) or 'none'})"
            )


def describe_plugins(plugins):
    """Load and check each plugin task in a subprocess (`python -m bnre tasks`), so that
    a plugin that does not import or is not a task stops the run before any job; the
    description says which ones have an exact likelihood. Skipped where the package's
    dependencies are not installed next to Snakemake (e.g. with --sdm conda)."""
    if not plugins or importlib.util.find_spec("torch") is None:
        return {}
    sources = [source for source, _, _ in plugins.values()]
    done = subprocess.run(
        [sys.executable, "-m", "bnre", "tasks", *sources],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise WorkflowError(f"config: {done.stderr.strip() or done.stdout.strip()}")
    return {d["name"]: d for d in json.loads(done.stdout)}


def observation_files(config):
    """Task -> {observation name (the file's stem): its absolute path}."""
    files = {}
    for task, names in config["observations"].items():
        if task not in config["tasks"]:
            raise WorkflowError(
                f"config: observations.{task}: {task!r} is not one of `tasks`"
            )
        stems = [Path(name).stem for name in names]
        repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
        if repeated:
            raise WorkflowError(
                f"config: observations.{task}: several files are named {repeated}"
                " (their stems name the outputs)"
            )
        files[task] = {
            Path(name).stem: config_file(f"observations.{task}", name) for name in names
        }
    budget = config["infer"]["budget"]
    if files and budget is not None and budget not in config["budgets"]:
        raise WorkflowError(
            f"config: infer.budget = {budget} is not one of `budgets` {config['budgets']}"
        )
    return files


def check_observations(observations):
    """Read every observation file for its task in a subprocess (`python -m bnre tasks TASK
    --observations ...`), so that a wrong shape or a NaN stops the run before any job, not
    at the infer job after hours of simulation and training; skipped where the package's
    dependencies are not installed next to Snakemake, as for the plugins."""
    if not observations or importlib.util.find_spec("torch") is None:
        return
    for task, files in observations.items():
        source = PLUGINS.get(task, (task,))[0]
        done = subprocess.run(
            [sys.executable, "-m", "bnre", "tasks", source, "--observations"]
            + [str(path) for path in files.values()],
            env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
        )
        if done.returncode:
            error = done.stderr.strip() or done.stdout.strip()
            raise WorkflowError(f"config: observations.{task}: {error}")


def task_source(wildcards):
    """What the jobs pass as --task: the name, or the plugin's `name=target`."""
    return PLUGINS.get(wildcards.task, (wildcards.task,))[0]


# Every job runs the package from this checkout (src/ next to the Snakefile), also inside
# conda environments, which then only need the package's dependencies.
shell.prefix(f"export PYTHONPATH={shlex.quote(str(SRC))}; ")

# The package modules each stage runs, by static analysis of src/bnre.
sourcegraph = package_module("sourcegraph")

PLUGINS = task_plugins(config)
check_task_overrides(config, PLUGINS)
PLUGIN_TASKS = describe_plugins(PLUGINS)
OBSERVATIONS = observation_files(config)
check_observations(OBSERVATIONS)

# Every file the rules pass between them, as a pattern defined once; `path` fills some
# wildcards and leaves the others, e.g. path("split", split="test") -> data/{task}/test.h5.
PATHS = {
    "block": "data/{task}/blocks/{split}/{block}.h5",
    "split": "data/{task}/{split}.h5",
    "model": "models/{task}/{method}/{budget}.pt",
    "history": "models/{task}/{method}/{budget}.history.csv",
    "result": "results/{task}/{method}/{budget}/{kind}.csv",
    "summary": "results/summary.csv",
    "coverage": "results/coverage.csv",
    "calibration": "results/calibration.csv",
    "figure": "figures/{stem}.{ext}",
    "observed": "results/{task}/observed/{observation}/{kind}.csv",
}


class _Wildcards(dict):
    def __missing__(self, key):
        return f"{{{key}}}"


def path(name, **values):
    """The pattern PATHS[name] with the wildcards in `values` filled in."""
    return PATHS[name].format_map(_Wildcards(values))


TASKS = config["tasks"]
METHODS = config["methods"]
BUDGETS = config["budgets"]
SPLITS = ["train", "val", "test"]


wildcard_constraints:
    task="|".join(TASKS),
    method="|".join(METHODS),
    budget=r"\d+",
    split="|".join(SPLITS),
    block=r"\d+",
    observation=r"[^/]+",


def split_size(split):
    return config["simulation"][split]


def n_blocks(split):
    return math.ceil(split_size(split) / config["simulation"]["block_size"])


def block_range(wildcards):
    """[start, stop) of the pairs of one simulation block."""
    size = config["simulation"]["block_size"]
    start = int(wildcards.block) * size
    return start, min(start + size, split_size(wildcards.split))


def block_files(wildcards):
    return expand(
        path("block"),
        task=wildcards.task,
        split=wildcards.split,
        block=range(n_blocks(wildcards.split)),
    )


# Training options that cannot change the model: the train rule takes them as resources,
# which Snakemake does not track, so changing them re-runs nothing.
EXECUTION_OPTIONS = method_registry.EXECUTION_OPTIONS


def method_base(method):
    """The method a variant is built on (a method is its own base)."""
    return (
        config["variants"][method]["base"] if method in config["variants"] else method
    )


def task_train_options(task, method=None):
    """The `train` options of a task (and method): the defaults, then the task's
    `train.tasks` overrides, then the variant's `train` overrides."""
    options = {k: v for k, v in config["train"].items() if k != "tasks"}
    options.update(config["train"]["tasks"].get(task, {}))
    if method in config["variants"]:
        options.update(config["variants"][method].get("train", {}))
    return options


def check_method_options(config):
    """Refuse, naming the key, options of another method in a variant, and contrastive
    batches too small for their sets."""
    for name, variant in config["variants"].items():
        base = variant["base"]
        wrong = sorted(
            k
            for k in variant.get("train", {})
            if base not in METHOD_OPTIONS.get(k, BASE_METHODS)
        )
        if wrong:
            uses = "; ".join(
                f"{k} is an option of {', '.join(sorted(METHOD_OPTIONS[k]))} only"
                for k in wrong
            )
            raise WorkflowError(
                f"config: variants.{name}.train sets {', '.join(wrong)}, which its "
                f"base method {base} does not use ({uses})"
            )
    for method in config["methods"]:
        for task in config["tasks"]:
            problem = method_registry.check_options(
                method_base(method), task_train_options(task, method)
            )
            if problem:
                raise WorkflowError(
                    f"config: method {method} on task {task}: {problem}"
                )


check_method_options(config)


def train_options(wildcards):
    """The options that define the model, as the JSON TrainConfig reads (tracked params)."""
    options = task_train_options(wildcards.task, wildcards.method)
    for key in EXECUTION_OPTIONS:
        del options[key]
    base = method_base(wildcards.method)
    for key, methods in METHOD_OPTIONS.items():  # options the method ignores
        if base not in methods:
            if key in method_registry.NEUTRAL_OPTIONS:
                options[key] = method_registry.NEUTRAL_OPTIONS[key]
            else:
                del options[key]
    options = {method_registry.field(key): value for key, value in options.items()}
    options["replicates"] = config["replicates"]
    options["seed"] = config["seed"]
    options["method"] = base
    options["name"] = wildcards.method
    return json.dumps(options, sort_keys=True)


def train_execution(key):
    """An execution option of the train rule, as a (string) resource."""
    assert key in EXECUTION_OPTIONS, key
    return lambda wildcards: str(
        task_train_options(wildcards.task, wildcards.method)[key]
    )


# The tasks whose likelihood is tractable: their exact posterior is evaluated on the same
# grid as the estimators (rule evaluate_exact). Built-in ones from the registry; plugins
# say so when they are checked (describe_plugins).
BUILTIN_TRACTABLE = tuple(
    name for name, task in task_registry.TASKS.items() if task.tractable
)
TRACTABLE_TASKS = BUILTIN_TRACTABLE + tuple(
    name for name, task in PLUGIN_TASKS.items() if task["tractable"]
)


def evaluation_tables(kind):
    """The `kind` table of every (task, method, budget), and of each tractable task's
    exact posterior."""
    tables = expand(
        path("result"),
        task=TASKS,
        method=METHODS,
        budget=BUDGETS,
        kind=kind,
    )
    exact = [task for task in TASKS if task in TRACTABLE_TASKS]
    return tables + expand(
        path("result", method="exact", budget="all"), task=exact, kind=kind
    )


def figure_files(report_them=False):
    """The figures of the `figures` rule; with `report_them`, wrapped for the report."""
    stems = {f"coverage_{task}": "coverage_curves.rst" for task in TASKS}
    stems.update({f"calibration_{task}": "calibration.rst" for task in TASKS})
    stems.update(
        coverage_auc="coverage_auc.rst",
        log_posterior="log_posterior.rst",
        balancing="balancing.rst",
    )
    if any(task in TRACTABLE_TASKS for task in TASKS):
        stems["kl_exact"] = "kl_exact.rst"
    return reported(stems, report_them)


def reported(stems, report_them):
    """Paths figures/{stem}.{ext}; the first format of each wrapped in report() if asked."""
    files = []
    for stem, caption in stems.items():
        for i, ext in enumerate(config["figures"]["formats"]):
            figure = path("figure", stem=stem, ext=ext)
            if report_them and i == 0:
                figure = report(figure, caption=f"report/{caption}", category="Figures")
            files.append(figure)
    return files


def training_figure_files(report_them=False):
    stems = {f"training_{task}": "training.rst" for task in TASKS}
    stems.update({f"penalty_{task}": "penalty.rst" for task in TASKS})
    return reported(stems, report_them)


def posterior_figure_files():
    return reported({f"posterior_{task}": "posterior.rst" for task in TASKS}, False)


def posterior_outputs():
    """Outputs of the posterior_figure rule (wildcard task), the first for the report."""
    outputs = []
    for i, ext in enumerate(config["figures"]["formats"]):
        figure = path("figure", stem="posterior_{task}", ext=ext)
        if i == 0:
            figure = report(figure, caption="report/posterior.rst", category="Figures")
        outputs.append(figure)
    return outputs


INFER_BUDGET = config["infer"]["budget"] or max(BUDGETS)


def observation_input(wildcards):
    return str(OBSERVATIONS[wildcards.task][wildcards.observation])


def observed_outputs():
    """Figures of the infer rule (wildcards task, observation), the first for the report."""
    outputs = []
    for i, ext in enumerate(config["figures"]["formats"]):
        figure = path("figure", stem="observed_{task}_{observation}", ext=ext)
        if i == 0:
            figure = report(
                figure,
                caption="report/observed.rst",
                category="Observed data",
                subcategory="{task}",
            )
        outputs.append(figure)
    return outputs


def observed_files():
    """The posterior tables and figures of every observation file."""
    files = []
    for task, observations in OBSERVATIONS.items():
        for observation in observations:
            files += expand(
                path("observed", task=task, observation=observation),
                kind=["samples", "intervals"],
            )
            files += expand(
                path("figure", stem=f"observed_{task}_{observation}", ext="{ext}"),
                ext=config["figures"]["formats"],
            )
    return files


def history_files():
    return expand(
        path("history"),
        task=TASKS,
        method=METHODS,
        budget=BUDGETS,
    )


# Resources: config["resources"][rule], with per-task overrides under `tasks`.


def job_setting(rule, key, wildcards):
    """The `key` resource of a job of `rule`: the task's override, else the rule's."""
    settings = config["resources"][rule]
    task = getattr(wildcards, "task", None)
    return settings["tasks"].get(task, {}).get(key, settings[key])


def job_threads(rule):
    return lambda wildcards: job_setting(rule, "threads", wildcards)


def job_gpus(rule):
    return lambda wildcards: job_setting(rule, "gpu", wildcards)


def job_runtime(rule):
    """Minutes; a retried job (attempt 2, 3, ...) gets that many times the first's."""
    return lambda wildcards, attempt: job_setting(rule, "runtime", wildcards) * attempt


def job_mem_mb(rule):
    """MB; a retried job (attempt 2, 3, ...) gets that many times the first's."""
    return lambda wildcards, attempt: job_setting(rule, "mem_mb", wildcards) * attempt


# Code: each rule declares, as a parameter, the hash of the package modules its command
# runs (for a job's own task), so that Snakemake's `params` re-run trigger re-runs the
# jobs whose code changed, and only those.


def grid_options():
    """The posterior grid's command-line options (`python -m bnre evaluate --help`): only
    the chosen grid's, so that the other grid's settings re-run nothing."""
    e = config["evaluate"]
    if e["grid"] == "uniform":
        return f"--grid uniform --bins {e['bins']} --max-cells {e['max_cells']}"
    cells = "" if e["refine_cells"] is None else f" --refine-cells {e['refine_cells']}"
    return (
        f"--grid adaptive --coarse-bins {e['coarse_bins']}{cells}"
        f" --refine-depth {e['refine_depth']} --refine-tolerance {e['refine_tolerance']}"
    )


def package_code(*commands):
    """Parameter: hash of what `python -m bnre <command>` runs, for each of `commands`."""
    root = SRC / "bnre"

    def code(wildcards):
        task = getattr(wildcards, "task", None)
        package = sourcegraph.code_hash(commands, task, root)
        if task not in PLUGINS:
            return package
        _, file, cls = PLUGINS[task]
        return f"{package}+{sourcegraph.plugin_code_hash(file, cls, commands)}"

    return code
