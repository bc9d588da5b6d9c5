"""Configuration validation and path helpers shared by every rule.

The workflow's logic (config typing, cross-checks, plugins, job options, code hashes) is
plain Python in the package (bnre.workflow, tested directly); here is what must be
Snakemake: the schema's validation, paths, wildcards, targets and resources.
"""

import math
import shlex
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

# bnre.workflow imports nothing but the standard library, PyYAML, jsonschema and the
# package's registry and import graph: the package's own dependencies (torch, ...) need
# not be installed next to Snakemake.
sys.path.insert(0, str(SRC))
from bnre.workflow import ConfigError, jobs, settings
from bnre.workflow.schema import command_line_typed


def checked(function, *args):
    """`function(*args)`, a bad config (ConfigError) reported as Snakemake reports one."""
    try:
        return function(*args)
    except ConfigError as error:
        raise WorkflowError(str(error)) from None


CONFIG_SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
config.update(checked(command_line_typed, config, CONFIG_SCHEMA, CONFIG_SCHEMA))
# Seeds: `seeds`, or the `seed` of the user's own config files or --config (older configs)
USER_FILES = {
    str(f): yaml.safe_load(Path(f).read_text()) for f in workflow.overwrite_configfiles
}
COMMAND_LINE = dict(workflow.config_settings.config)
config["seeds"] = checked(settings.resolve_seeds, config, USER_FILES, COMMAND_LINE)
config.pop("seed", None)
validate(config, schema="../config/schema.yaml")
checked(settings.check_config, config)
CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
checked(settings.check_optional_tasks, config, CONDA)


def simulate_env(wildcards):
    """The simulation jobs' conda environment: the task's own one where it has one."""
    return settings.OPTIONAL_TASKS.get(wildcards.task, {}).get(
        "env", "../envs/simulate.yaml"
    )


# Tasks: built-in (bnre.registry.tasks), the config's `plugins`, and those installed
# packages register in the entry-point group bnre.tasks; observed data, per task.
PLUGINS = checked(settings.task_plugins, config, workflow.configfiles)
checked(settings.check_task_overrides, config, PLUGINS)
PLUGIN_TASKS = checked(settings.describe_plugins, PLUGINS, SRC)
OBSERVATIONS = checked(settings.observation_files, config, workflow.configfiles)
checked(settings.check_observations, OBSERVATIONS, PLUGINS, SRC)
checked(settings.check_method_options, config)


def task_source(wildcards):
    """What the jobs pass as --task: the name, or the plugin's `name=target`."""
    return PLUGINS.get(wildcards.task, (wildcards.task,))[0]


# Every job runs the package from this checkout (src/ next to the Snakefile), also inside
# conda environments, which then only need the package's dependencies.
shell.prefix(f"export PYTHONPATH={shlex.quote(str(SRC))}; ")

# Every file the rules pass between them, as a pattern defined once; `path` fills some
# wildcards and leaves the others, e.g. path("split", split="test") -> data/{task}/test.h5.
PATHS = {
    "block": "data/{task}/seed{seed}/blocks/{split}/{block}.h5",
    "split": "data/{task}/seed{seed}/{split}.h5",
    "model": "models/{task}/seed{seed}/{method}/{budget}.pt",
    "history": "models/{task}/seed{seed}/{method}/{budget}.history.csv",
    "result": "results/{task}/seed{seed}/{method}/{budget}/{kind}.csv",
    "summary": "results/summary.csv",
    "coverage": "results/coverage.csv",
    "calibration": "results/calibration.csv",
    "figure": "figures/{stem}.{ext}",
    "observed": "results/{task}/seed{seed}/observed/{observation}/{kind}.csv",
}


class _Wildcards(dict):
    def __missing__(self, key):
        return f"{{{key}}}"


def path(name, **values):
    """The pattern PATHS[name] with the wildcards in `values` filled in."""
    return PATHS[name].format_map(_Wildcards(values))


SEEDS = config["seeds"]
TASKS = config["tasks"]
METHODS = config["methods"]
BUDGETS = config["budgets"]
SPLITS = ["train", "val", "test"]


wildcard_constraints:
    seed=r"\d+",
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
        seed=wildcards.seed,
        task=wildcards.task,
        split=wildcards.split,
        block=range(n_blocks(wildcards.split)),
    )


def method_base(method):
    """The method a variant is built on (a method is its own base)."""
    return settings.method_base(config, method)


def train_options(wildcards):
    """The options that define the model, as the JSON TrainConfig reads (tracked params)."""
    return jobs.train_options(
        config, wildcards.task, wildcards.method, int(wildcards.seed)
    )


def train_execution(key):
    """An execution option of the train rule, as a (string) resource: how the job runs,
    never what it computes, so that changing it re-runs nothing."""
    return lambda wildcards: str(
        settings.task_train_options(config, wildcards.task, wildcards.method)[key]
    )


# The tasks whose likelihood is tractable: their exact posterior is evaluated on the same
# grid as the estimators (rule evaluate_exact). Built-in ones from the registry; plugins
# say so when they are checked.
TRACTABLE_TASKS = settings.BUILTIN_TRACTABLE + tuple(
    name for name, task in PLUGIN_TASKS.items() if task["tractable"]
)


def evaluation_tables(kind):
    """The `kind` table of every (task, method, budget), and of each tractable task's
    exact posterior."""
    tables = expand(
        path("result"),
        seed=SEEDS,
        task=TASKS,
        method=METHODS,
        budget=BUDGETS,
        kind=kind,
    )
    exact = [task for task in TASKS if task in TRACTABLE_TASKS]
    return tables + expand(
        path("result", method="exact", budget="all"),
        seed=SEEDS,
        task=exact,
        kind=kind,
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
        figure = path(
            "figure", stem="observed_{task}_{observation}_seed{seed}", ext=ext
        )
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
                seed=SEEDS,
                kind=["samples", "intervals"],
            )
            files += expand(
                path(
                    "figure",
                    stem=f"observed_{task}_{observation}_seed{{seed}}",
                    ext="{ext}",
                ),
                seed=SEEDS,
                ext=config["figures"]["formats"],
            )
    return files


def history_files():
    return expand(
        path("history"),
        seed=SEEDS,
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


def evaluation_options(command):
    """The evaluation options (JSON) that `command` reads: the chosen grid's and its own."""
    return jobs.evaluation_options(config, command)


def package_code(*commands):
    """Parameter: hash of what `python -m bnre <command>` runs, for each of `commands`."""
    return lambda wildcards: jobs.code_hash(
        commands, getattr(wildcards, "task", None), PLUGINS, SRC / "bnre"
    )
