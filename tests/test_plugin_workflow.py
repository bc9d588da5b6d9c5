"""The user's own task through the real workflow: the worked example (examples/oscillator)
as a plugin given by a path relative to its config file, its re-runs, and the errors a
broken plugin gets before any job runs."""

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from test_incremental import DOWNSTREAM
from test_workflow import snakemake

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "oscillator"
TINY = ROOT / "tests" / "config" / "tiny_oscillator.yaml"

pytestmark = pytest.mark.workflow


def plugin_config(directory, source="task.py:DampedOscillator", **changes):
    """The tiny oscillator config, written into ``directory`` with its plugin's source."""
    config = yaml.safe_load(TINY.read_text())
    config["plugins"] = {"oscillator": source}
    config["observations"] = {"oscillator": [str(EXAMPLE / "observed.csv")]}
    config.update(changes)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def oscillator_workflow(tmp_path_factory):
    """One completed run of the tiny example, with a copy of the plugin that tests edit."""
    base = tmp_path_factory.mktemp("oscillator")
    plugin = base / "plugin"
    plugin.mkdir()
    shutil.copy(EXAMPLE / "task.py", plugin / "task.py")
    config = plugin_config(plugin)
    work = base / "work"
    snakemake("--cores", "2", "--directory", work, "--configfile", config)
    return work, config, plugin / "task.py"


def planned(config, work=None, cwd=ROOT):
    """The rules of the jobs a dry-run of ``config`` alone plans, counted."""
    where = ["--directory", work] if work else []
    result = snakemake("--dry-run", *where, "--configfile", config, cwd=cwd)
    jobs = Counter(re.findall(r"^(?:local)?rule (\w+):$", result.stdout, re.M))
    assert jobs or "Nothing to be done" in result.stdout, result.stdout
    return jobs


def jobs_after_edit(workflow, old, new):
    work, config, task = workflow
    original = task.read_text()
    assert original.count(old) == 1, old
    try:
        task.write_text(original.replace(old, new))
        return planned(config, work)
    finally:
        task.write_text(original)


def test_the_example_runs_through_the_dag(oscillator_workflow):
    work, _, _ = oscillator_workflow
    summary = pd.read_csv(work / "results" / "summary.csv", dtype={"replicate": str})
    assert set(summary.task) == {"oscillator"}
    assert set(summary.method) == {"nre", "bnre", "exact"}  # the plugin's likelihood is tractable
    ensemble = summary[(summary.replicate == "ensemble")].pivot_table(index="method", columns="metric", values="value")
    # the non-uniform prior's expected log density at the true parameters, finite
    assert ensemble.loc["exact", "log_prior"] == pytest.approx(ensemble.loc["nre", "log_prior"])
    assert 0.5 < ensemble.loc["nre", "log_prior"] < 2.0
    assert ensemble.loc["exact", "log_posterior"] > ensemble.loc["exact", "log_prior"]
    for figure in ("coverage_oscillator", "calibration_oscillator", "posterior_oscillator", "kl_exact",
                   "observed_oscillator_observed_seed5"):
        assert (work / "figures" / f"{figure}.png").stat().st_size > 1000
    # the posterior of the observed data, per method
    observed = work / "results" / "oscillator" / "seed5" / "observed" / "observed"
    draws = pd.read_csv(observed / "samples.csv")
    assert set(draws.method) == {"nre", "bnre"} and len(draws) == 2 * 200
    assert list(draws.columns[-2:]) == ["omega", "zeta"]
    intervals = pd.read_csv(observed / "intervals.csv")
    assert set(intervals.level) == {0.5, 0.9, 0.95} and (intervals.sampler == "grid").all()


def test_editing_only_the_embedding_retrains_without_resimulating(oscillator_workflow):
    jobs = jobs_after_edit(oscillator_workflow, "nn.Linear(len(TIMES), 64)", "nn.Linear(len(TIMES), 32)")
    assert jobs == Counter(
        train=2, evaluate=2, training_figures=1, posterior_figure=1, infer=1, **DOWNSTREAM
    ), jobs


def test_editing_a_docstring_or_a_comment_reruns_nothing(oscillator_workflow):
    assert jobs_after_edit(oscillator_workflow, "(optional; default: flatten)", "(optional)") == Counter()
    assert jobs_after_edit(oscillator_workflow, "return 16\n", "return 16  # its width\n") == Counter()


def test_editing_the_simulator_resimulates(oscillator_workflow):
    jobs = jobs_after_edit(oscillator_workflow, "NOISE = 0.3", "NOISE = 0.25")
    assert jobs["merge_blocks"] == 3 and jobs["simulate_block"] == 3
    assert jobs["train"] == 2 and jobs["evaluate_exact"] == 1 and jobs["infer"] == 1


def test_a_new_observation_file_adds_only_its_posterior(oscillator_workflow, tmp_path):
    work, config, _ = oscillator_workflow
    extra = tmp_path / "second.npy"
    np.save(extra, np.zeros(10))
    changed = yaml.safe_load(config.read_text())
    changed["observations"]["oscillator"].append(str(extra))
    path = config.parent / "config_more.yaml"  # next to the plugin, which it names relatively
    path.write_text(yaml.safe_dump(changed))
    try:
        assert planned(path, work) == Counter(infer=1, all=1)
    finally:
        path.unlink()


@pytest.mark.parametrize(
    "observations, message",
    [
        ({"slcp": ["a.npy"]}, r"observations\.slcp: 'slcp' is not one of `tasks`"),
        ({"oscillator": ["nowhere.npy"]}, r"observations\.oscillator: no file nowhere\.npy"),
        ({"oscillator": ["a.npy", "sub/a.npy"]}, r"several files are named \['a'\]"),
    ],
)
def test_bad_observations_stop_the_run_before_any_job(tmp_path, observations, message):
    np.save(tmp_path / "a.npy", np.zeros(10))
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "a.npy", np.zeros(10))
    shutil.copy(EXAMPLE / "task.py", tmp_path / "task.py")
    config = plugin_config(tmp_path, observations=observations)
    result = snakemake("--dry-run", "--directory", tmp_path / "work", "--configfile", config, check=False)
    assert result.returncode != 0 and re.search(message, result.stdout + result.stderr), result.stdout + result.stderr


def test_the_example_config_plans_its_study_from_anywhere(tmp_path):
    """Its plugin path is relative to the config file, not to the working directory."""
    jobs = planned(EXAMPLE / "config.yaml", cwd=tmp_path)
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    cells = len(config["budgets"]) * len(config["methods"])
    assert jobs["train"] == cells and jobs["evaluate"] == cells and jobs["evaluate_exact"] == 1


BROKEN = {
    "missing": ("nowhere.py:Task", r"plugins\.oscillator: no file nowhere\.py \(tried "),
    "no module": ("no_such_module:Task", r"plugins\.oscillator: module 'no_such_module' is not importable"),
    "not a task": ("plain.py:Plain", r"is not a task \(a subclass of bnre\.tasks\.Task\)"),
    "does not import": ("broken.py:Task", r"broken\.py does not import \(ZeroDivisionError"),
    "built-in name": (None, r"plugins \['slcp'\] are names of built-in tasks"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_plugin_stops_the_run_before_any_job(tmp_path, case):
    source, message = BROKEN[case]
    (tmp_path / "plain.py").write_text("class Plain:\n    pass\n")
    (tmp_path / "broken.py").write_text("1 / 0\n")
    if source is None:
        config = plugin_config(tmp_path, plugins={"oscillator": "plain.py:Plain", "slcp": "plain.py:Plain"})
    else:
        config = plugin_config(tmp_path, source)
    work = tmp_path / "work"
    result = snakemake("--cores", "1", "--directory", work, "--configfile", config, check=False)
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr), result.stdout + result.stderr
    assert not (work / "data").exists() and not (work / "logs").exists()
