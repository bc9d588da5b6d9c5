"""Incremental re-runs: after a change, a completed workflow re-runs exactly what it must.

Every test dry-runs (default --rerun-triggers) against one completed run of the tiny
config (the session fixture ``tiny_workflow``) with a changed config or a changed copy of
the code, and checks the planned jobs rule by rule and task by task.
"""

import math
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bnre.registry import tasks as task_registry

from checkout import copy_checkout
from snakemake_cli import snakemake_output as snakemake

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"
CONFIG = yaml.safe_load(TINY.read_text())
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())

pytestmark = pytest.mark.workflow

DOWNSTREAM = {"aggregate_summary": 1, "aggregate_coverage": 1, "aggregate_calibration": 1, "figures": 1, "all": 1}
# the tiny config's tasks with an exact posterior (rule evaluate_exact, one job per task)
TRACTABLE = {name for name, task in task_registry.TASKS.items() if task.tractable}
EXACT = {"evaluate_exact": len(TRACTABLE & set(CONFIG["tasks"]))}
# jobs that read the trained models: the training curves and one posterior figure per task
MODEL_FIGURES = {"training_figures": 1, "posterior_figure": len(CONFIG["tasks"])}


def planned(workdir, *configs, snakefile=ROOT / "Snakefile"):
    """The jobs a dry-run plans: a list of (rule, wildcards)."""
    output = snakemake("--dry-run", "--directory", workdir, "--configfile", TINY, *configs, snakefile=snakefile)
    jobs = []
    for match in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", output, re.M):
        wildcards = re.search(r"^    wildcards: (.*)$", match.group(2), re.M)
        pairs = wildcards.group(1).split(", ") if wildcards else []
        jobs.append((match.group(1), dict(p.split("=", 1) for p in pairs)))
    if not jobs:
        assert "Nothing to be done" in output, output
    return jobs


def counts(jobs):
    return dict(Counter(rule for rule, _ in jobs))


def override(tmp_path, name, values):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def n_blocks(config):
    sim = config["simulation"]
    return sum(math.ceil(sim[split] / sim["block_size"]) for split in ("train", "val", "test"))


def per_task(config, tasks=1, budgets=None, exact=0):
    """Jobs of every stage for `tasks` tasks (and `budgets` budgets) of the config, `exact`
    of them tractable."""
    models = tasks * len(config["methods"]) * (budgets or len(config["budgets"]))
    jobs = {"simulate_block": tasks * n_blocks(config), "merge_blocks": tasks * 3, "train": models, "evaluate": models}
    return {**jobs, "evaluate_exact": exact} if exact else jobs


def test_completed_workflow_has_nothing_to_do(tiny_workflow):
    # how long it takes to find that out is measured in benchmarks/up_to_date_check.py
    assert planned(tiny_workflow) == []  # (checked first: a real run must not change the shared run)
    output = snakemake("--cores", "2", "--directory", tiny_workflow, "--configfile", TINY)
    assert "Nothing to be done" in output


def test_changing_resources_reruns_nothing(tiny_workflow, tmp_path):
    # threads, memory, runtime and GPUs are how a job runs, not what it computes
    resources = {"train": {"threads": 2, "mem_mb": 123, "gpu": 1, "tasks": {"slcp": {"runtime": 5}}}}
    assert planned(tiny_workflow, override(tmp_path, "resources", {"resources": resources})) == []


def test_changing_training_execution_settings_reruns_nothing(tiny_workflow, tmp_path):
    # how often checkpoints are written and whether data stream from disk do not change
    # the model (streamed = in-memory bit for bit: tests/test_ensemble.py)
    task = CONFIG["tasks"][0]
    train = {"checkpoint_seconds": 1, "memory_limit_mb": 1, "tasks": {task: {"memory_limit_mb": 7}}}
    assert planned(tiny_workflow, override(tmp_path, "execution", {"train": train})) == []


def test_training_hyperparameter_reruns_training_and_downstream_only(tiny_workflow, tmp_path):
    jobs = planned(tiny_workflow, override(tmp_path, "epochs", {"train": {"epochs": CONFIG["train"]["epochs"] + 1}}))
    models = len(CONFIG["tasks"]) * len(CONFIG["methods"]) * len(CONFIG["budgets"])
    assert counts(jobs) == {"train": models, "evaluate": models, **DOWNSTREAM, **MODEL_FIGURES}


def test_lambda_reruns_only_bnre(tiny_workflow, tmp_path):
    # NRE has no balancing penalty, so λ and its warm-up cannot change an NRE model
    train = {"lambda": CONFIG["train"]["lambda"] / 2, "lambda_warmup": 3}
    jobs = planned(tiny_workflow, override(tmp_path, "lambda", {"train": train}))
    models = len(CONFIG["tasks"]) * len(CONFIG["budgets"])
    assert counts(jobs) == {"train": models, "evaluate": models, **DOWNSTREAM, **MODEL_FIGURES}
    assert {w["method"] for rule, w in jobs if rule in ("train", "evaluate")} == {"bnre"}


@pytest.mark.parametrize("train", [{"gamma": 2.0, "cardinality": 3}, {"flow": "maf", "flow_hidden": [8]}])
def test_options_of_methods_not_run_rerun_nothing(tiny_workflow, tmp_path, train):
    # the contrastive and flow options belong to methods the tiny config does not train
    # (they are left out of NRE's and BNRE's options), so its models stay as they are
    assert planned(tiny_workflow, override(tmp_path, "other_methods", {"train": train})) == []


def test_per_task_training_override_reruns_only_that_task(tiny_workflow, tmp_path):
    task = CONFIG["tasks"][0]
    jobs = planned(tiny_workflow, override(tmp_path, "epochs", {"train": {"tasks": {task: {"epochs": CONFIG["train"]["epochs"] + 1}}}}))
    models = len(CONFIG["methods"]) * len(CONFIG["budgets"])
    assert counts(jobs) == {"train": models, "evaluate": models, **DOWNSTREAM, "training_figures": 1,
                            "posterior_figure": 1}
    assert {w["task"] for _, w in jobs if "task" in w} == {task}


def test_evaluation_option_reruns_evaluation_and_downstream_only(tiny_workflow, tmp_path):
    cells = CONFIG["evaluate"]["refine_cells"] + 256
    jobs = planned(tiny_workflow, override(tmp_path, "cells", {"evaluate": {"refine_cells": cells}}))
    models = len(CONFIG["tasks"]) * len(CONFIG["methods"]) * len(CONFIG["budgets"])
    # the posterior figure draws on the same grid, and the exact posterior is evaluated on it
    assert counts(jobs) == {"evaluate": models, **EXACT, **DOWNSTREAM, "posterior_figure": len(CONFIG["tasks"])}


def test_the_uniform_grid_s_options_rerun_nothing_on_the_adaptive_grid(tiny_workflow, tmp_path):
    jobs = planned(tiny_workflow, override(tmp_path, "bins", {"evaluate": {"bins": CONFIG["evaluate"]["bins"] + 1}}))
    assert counts(jobs) == {}


def test_figure_option_reruns_only_figures(tiny_workflow, tmp_path):
    jobs = planned(tiny_workflow, override(tmp_path, "formats", {"figures": {"formats": ["png", "svg"]}}))
    assert counts(jobs) == {"figures": 1, "all": 1, **MODEL_FIGURES}


def test_adding_a_budget_adds_only_its_jobs(tiny_workflow, tmp_path):
    new = min(CONFIG["budgets"]) + 128
    assert new not in CONFIG["budgets"] and new <= CONFIG["simulation"]["train"]
    jobs = planned(tiny_workflow, override(tmp_path, "budget", {"budgets": CONFIG["budgets"] + [new]}))
    models = len(CONFIG["tasks"]) * len(CONFIG["methods"])
    # the new budget is not the largest: the posterior figures (largest budget) stay; the
    # exact posterior's rows are repeated at every budget, so they are rewritten (cheap)
    assert counts(jobs) == {"train": models, "evaluate": models, **EXACT, **DOWNSTREAM, "training_figures": 1}
    assert {w["budget"] for rule, w in jobs if rule in ("train", "evaluate")} == {str(new)}


def test_adding_a_task_adds_only_its_jobs(tiny_workflow, tmp_path):
    others = sorted(set(task_registry.TASKS) - set(CONFIG["tasks"]))
    assert others, "the registry knows no task beyond the tiny config's"
    new = others[0]
    jobs = planned(tiny_workflow, override(tmp_path, "task", {"tasks": CONFIG["tasks"] + [new]}))
    expected = {**per_task(CONFIG, exact=int(new in TRACTABLE)), **DOWNSTREAM, "training_figures": 1,
                "posterior_figure": 1}
    assert counts(jobs) == expected
    assert {w["task"] for _, w in jobs if "task" in w} == {new}


ALL_MODELS = len(CONFIG["tasks"]) * len(CONFIG["methods"]) * len(CONFIG["budgets"])
# every job of every task: what a change to code that every stage runs re-runs
EVERYTHING = {**per_task(CONFIG, len(CONFIG["tasks"])), **EXACT, **DOWNSTREAM, **MODEL_FIGURES}


def code_copy(tmp_path):
    """A copy of the checkout, its code only."""
    return copy_checkout(tmp_path / "repo")


def changed_copy(tmp_path, *modules):
    """A copy of the checkout (its code only) with a statement appended to ``modules``."""
    copy = code_copy(tmp_path)
    for module in modules:
        with open(copy / "src" / "bnre" / module, "a") as f:
            f.write("\n_a_change = 1\n")
    return copy


def test_comments_docstrings_and_layout_of_every_module_rerun_nothing(tiny_workflow, tmp_path):
    copy = code_copy(tmp_path)
    modules = sorted((copy / "src" / "bnre").rglob("*.py"))
    for path in modules:
        text = path.read_text()
        docstring = re.match(r'(r?""")', text)  # the module's docstring, edited; else one added
        text = text.replace(docstring.group(1), docstring.group(1) + "Edited. ", 1) if docstring else '"""Added."""\n' + text
        path.write_text("# a comment\n" + text.replace("\n\n\n", "\n\n\n\n") + "\n# the end\n")
    assert len(modules) > 40
    assert planned(tiny_workflow, snakefile=copy / "Snakefile") == []


def test_an_edit_to_one_command_of_the_cli_reruns_that_command_s_jobs_only(tiny_workflow, tmp_path):
    copy = code_copy(tmp_path)
    cli = copy / "src" / "bnre" / "cli.py"
    text = cli.read_text()
    cli.write_text(text.replace('help="figure formats, e.g. png pdf svg")\n    s.set_defaults(run=cmd_figures)',
                                'help="figure formats: png, pdf, svg")\n    s.set_defaults(run=cmd_figures)'))
    assert cli.read_text() != text
    assert counts(planned(tiny_workflow, snakefile=copy / "Snakefile")) == {"figures": 1, "all": 1}


@pytest.mark.parametrize(
    "module, changed, tasks",
    [
        # a simulator: that task's simulations and everything downstream of them
        ("tasks/slcp.py", {**per_task(CONFIG, exact=1), **DOWNSTREAM, "training_figures": 1, "posterior_figure": 1},
         {"slcp"}),
        # evaluation code: every evaluation and downstream (and the posterior figure, which
        # evaluates the ensembles on its grid), no simulation or training
        ("evaluation/evaluate.py", {"evaluate": ALL_MODELS, **DOWNSTREAM, "posterior_figure": len(CONFIG["tasks"])},
         set(CONFIG["tasks"])),
        # the diagnostics every grid posterior goes through: the exact posterior's too
        ("evaluation/diagnostics.py", {"evaluate": ALL_MODELS, **EXACT, **DOWNSTREAM, "posterior_figure": len(CONFIG["tasks"])},
         set(CONFIG["tasks"])),
        # figure code: the figures only
        ("results/figures.py", {"figures": 1, "all": 1, **MODEL_FIGURES}, set(CONFIG["tasks"])),
        # training code: every training and what reads the models, no simulation
        ("training/fit.py", {"train": ALL_MODELS, "evaluate": ALL_MODELS, **DOWNSTREAM, **MODEL_FIGURES}, set(CONFIG["tasks"])),
        # shared network code (the ratio estimator and the losses it is built from): every
        # training of every task and what reads the models, but no simulation
        ("nets/estimators.py", {"train": ALL_MODELS, "evaluate": ALL_MODELS, **DOWNSTREAM, **MODEL_FIGURES}, set(CONFIG["tasks"])),
        ("methods/losses.py", {"train": ALL_MODELS, "evaluate": ALL_MODELS, **DOWNSTREAM, **MODEL_FIGURES},
         set(CONFIG["tasks"])),
        # the task interface every simulator is built on: everything, simulations included
        ("tasks/base.py", EVERYTHING, set(CONFIG["tasks"])),
    ],
)
def test_code_change_reruns_the_jobs_that_run_it(tiny_workflow, tmp_path, module, changed, tasks):
    copy = changed_copy(tmp_path, module)
    jobs = planned(tiny_workflow, snakefile=copy / "Snakefile")
    assert counts(jobs) == changed
    assert {w["task"] for _, w in jobs if "task" in w} == tasks


# Two tasks of which one imports the other's code: lotka_volterra uses mg1's Log1p.
IMPORTING_TASKS = {"tasks": ["mg1", "lotka_volterra"]}


@pytest.fixture(scope="module")
def importing_tasks_workflow(tmp_path_factory):
    """A workflow of IMPORTING_TASKS marked complete without running it: empty output files
    and Snakemake's metadata (--touch), which is all that a dry-run compares."""
    workdir = tmp_path_factory.mktemp("importing-tasks")
    config = override(workdir, "tasks", IMPORTING_TASKS)
    output = snakemake("--dry-run", "--directory", workdir, "--configfile", TINY, config)
    for line in re.findall(r"^    output: (.*)$", output, re.M):
        for path in line.split(", "):
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).touch()
    snakemake("--touch", "--forceall", "--cores", "1", "--directory", workdir, "--configfile", TINY, config)
    assert planned(workdir, config) == []
    return workdir, config


@pytest.mark.parametrize(
    "module, tasks",
    [
        # the imported task's code: its own jobs and those of the task importing it
        ("tasks/mg1.py", {"mg1", "lotka_volterra"}),
        # the importing task's code: its own jobs only (the import goes one way)
        ("tasks/lotka_volterra.py", {"lotka_volterra"}),
        # a module only lotka_volterra's task module imports (its CNN), simulation included
        ("nets/embeddings.py", {"lotka_volterra"}),
    ],
)
def test_code_change_follows_imports_between_tasks(importing_tasks_workflow, tmp_path, module, tasks):
    workdir, config = importing_tasks_workflow
    copy = changed_copy(tmp_path, module)
    jobs = planned(workdir, config, snakefile=copy / "Snakefile")
    assert counts(jobs) == {**per_task(CONFIG, len(tasks)), **DOWNSTREAM, "training_figures": 1,
                            "posterior_figure": len(tasks)}
    assert {w["task"] for _, w in jobs if "task" in w} == tasks


def test_a_one_seed_list_is_the_scalar_seed(tiny_workflow):
    """tiny.yaml's ``seed: 3`` and ``seeds: [3]`` are one study: the same files, params and
    code, so the run made with the first is complete for the second (bit for bit)."""
    assert planned(tiny_workflow, "--config", "seeds=[3]") == []


def test_adding_a_seed_runs_only_that_seed_s_cells(tiny_workflow):
    jobs = planned(tiny_workflow, "--config", "seeds=[3,4]")
    seeded = [(rule, w) for rule, w in jobs if "seed" in w]
    assert {w["seed"] for _, w in seeded} == {"4"}
    assert counts(seeded) == {**per_task(CONFIG, len(CONFIG["tasks"])), **EXACT}
    # the tables and figures gather every seed; the posterior example stays the first seed's
    assert counts([(rule, w) for rule, w in jobs if "seed" not in w]) == {**DOWNSTREAM, "training_figures": 1}


def test_summary_names_the_outputs_whose_params_changed(tiny_workflow, tmp_path):
    epochs = override(tmp_path, "epochs", {"train": {"epochs": CONFIG["train"]["epochs"] + 1}})
    output = snakemake("--summary", "--directory", tiny_workflow, "--configfile", TINY, epochs)
    rows = [line.split("\t") for line in output.splitlines() if line.count("\t") == 5]
    header, rows = rows[0], rows[1:]
    assert header == ["output_file", "date", "rule", "log-file(s)", "status", "plan"]
    by_rule = {}
    for row in rows:
        by_rule.setdefault(row[2], set()).add((row[4], row[5]))
    assert by_rule["train"] == {("params changed", "update pending")}
    assert by_rule["merge_blocks"] == {("ok", "no update")}
    assert by_rule["simulate_block"] == {("removed temp file", "no update")}


def test_list_changes_names_the_tables_whose_inputs_changed(tiny_workflow, tmp_path):
    assert snakemake("--list-changes", "input", "--directory", tiny_workflow, "--configfile", TINY).split() == [
        "Building", "DAG", "of", "jobs...",
    ]
    budget = override(tmp_path, "budget", {"budgets": CONFIG["budgets"] + [min(CONFIG["budgets"]) + 128]})
    output = snakemake("--list-changes", "input", "--directory", tiny_workflow, "--configfile", TINY, budget)
    listed = {line for line in output.splitlines() if not line.startswith("Building")}
    assert listed == {"results/summary.csv", "results/coverage.csv", "results/calibration.csv", *(
        f"figures/{kind}_{task}.png" for task in CONFIG["tasks"] for kind in ("training", "penalty"))}


VARIANTS = {
    "bnre_sum": {"base": "bnre", "train": {"bce": "sum", "lambda": 50}},
    "nre_last": {"base": "nre", "train": {"keep": "last", "early_stopping": False}},
}


@pytest.fixture(scope="module")
def variants_workflow(tmp_path_factory):
    """The tiny config on one task and budget, with two method variants beside NRE and BNRE."""
    workdir = tmp_path_factory.mktemp("variants")
    config = override(workdir, "variants", {"tasks": ["gaussian"], "budgets": [256],
                                            "methods": ["nre", "bnre", *VARIANTS], "variants": VARIANTS})
    snakemake("--cores", "2", "--directory", workdir, "--configfile", TINY, config)
    return workdir, config


def test_variants_are_their_own_cells_trained_on_the_same_subsets(variants_workflow):
    import torch

    workdir, _ = variants_workflow
    seeds = {}
    for method in ("nre", "bnre", *VARIANTS):
        payload = torch.load(workdir / "models" / "gaussian" / "seed3" / method / "256.pt", weights_only=True)
        base = VARIANTS[method]["base"] if method in VARIANTS else method
        assert (payload["config"]["method"], payload["config"]["name"]) == (base, method)
        for key, value in VARIANTS.get(method, {}).get("train", {}).items():
            assert payload["config"]["lmbda" if key == "lambda" else key] == value
        seeds[method] = payload["member_seeds"]
    assert len({tuple(s) for s in seeds.values()}) == 1  # member k: one seed, one subset, every method
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert set(summary.method) == {"nre", "bnre", *VARIANTS, "exact"}  # gaussian's exact posterior too
    history = pd.read_csv(workdir / "models" / "gaussian" / "seed3" / "nre_last" / "256.history.csv")
    assert (history.method == "nre_last").all()
    epochs = CONFIG["train"]["epochs"]
    assert history.groupby("member").epoch.max().eq(epochs).all()  # no early stopping
    assert history[history.kept].epoch.eq(epochs).all()  # keep last
    kept = summary[(summary.method == "nre_last") & (summary.metric == "kept_epoch")]
    assert kept.value.eq(epochs).all() and len(kept) == CONFIG["replicates"] + 1


def test_changing_a_variant_reruns_only_that_variant(variants_workflow, tmp_path):
    workdir, config = variants_workflow
    changed = {"variants": {**VARIANTS, "bnre_sum": {"base": "bnre", "train": {"bce": "sum", "lambda": 40}}}}
    jobs = planned(workdir, config, override(tmp_path, "changed", changed))
    assert {(rule, w.get("method")) for rule, w in jobs if rule in ("train", "evaluate")} == {
        ("train", "bnre_sum"), ("evaluate", "bnre_sum")}
    assert counts(jobs) == {"train": 1, "evaluate": 1, **DOWNSTREAM, **{**MODEL_FIGURES, "posterior_figure": 1}}
    assert planned(workdir, config) == []  # and the unchanged config has nothing to do
