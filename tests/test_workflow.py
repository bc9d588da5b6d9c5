"""The Snakemake workflow: config validation, dry-run of the default DAG, a real tiny run."""

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from checkout import copy_checkout
from snakemake_cli import run_snakemake as snakemake

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"
LAL = importlib.util.find_spec("lalsimulation") is not None
#: the tasks with an exact posterior (rule evaluate_exact)
TRACTABLE = {"gaussian", "slcp", "two_moons", "weinberg"}

pytestmark = pytest.mark.workflow


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def plugin_tractable(config: dict, directory: Path | None) -> set[str]:
    """The config's plugin tasks (paths relative to ``directory``) that give their likelihood."""
    from bnre.tasks import get_task

    tractable = set()
    for name, source in config.get("plugins", {}).items():
        where, _, cls = source.rpartition(":")
        if where.endswith(".py"):
            source = f"{(directory or ROOT) / where}:{cls}"
        if get_task(f"{name}={source}").tractable:
            tractable.add(name)
    return tractable


def expected_jobs(config: dict, directory: Path | None = None) -> dict[str, int]:
    sim = config["simulation"]
    blocks = sum(math.ceil(sim[s] / sim["block_size"]) for s in ("train", "val", "test"))
    seeds = len(config.get("seeds", [None]))  # `seed: N` is one seed
    models = seeds * len(config["tasks"]) * len(config.get("methods", ["nre", "bnre"])) * len(config["budgets"])
    tractable = [task for task in config["tasks"] if task in TRACTABLE | plugin_tractable(config, directory)]
    jobs = {
        "simulate_block": seeds * len(config["tasks"]) * blocks,
        "merge_blocks": seeds * len(config["tasks"]) * 3,
        "train": models,
        "evaluate": models,
        "evaluate_exact": seeds * len(tractable),
        "aggregate_summary": 1,
        "aggregate_coverage": 1,
        "aggregate_calibration": 1,
        "figures": 1,
        "training_figures": 1,
        "posterior_figure": len(config["tasks"]),
        "infer": seeds * sum(len(files) for files in config.get("observations", {}).values()),
        "all": 1,
    }
    return {rule: count for rule, count in jobs.items() if count}


def test_dry_run_of_default_config_lists_expected_jobs(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", ROOT / "config" / "config.yaml")
    counts = job_counts(result.stdout)
    assert counts.pop("total") == sum(expected_jobs(config).values())
    assert counts == expected_jobs(config)


def test_budgets_given_on_the_command_line_are_counts(tmp_path):
    """`--config budgets=[...]` reaches the workflow as strings (YAML's base loader): digit
    strings plan the same jobs as the integers of a config file, anything else is refused."""
    tiny = ROOT / "tests" / "config" / "tiny.yaml"
    config = yaml.safe_load(tiny.read_text())
    budget = config["budgets"][0]
    from_file = snakemake("--dry-run", "--directory", tmp_path, "--configfile", tiny, "--config", f"budgets=[{budget}]")
    expected = {**config, "budgets": [budget]}
    counts = job_counts(from_file.stdout)
    assert counts.pop("total") == sum(expected_jobs(expected).values())
    assert f"/{budget}.pt" in from_file.stdout
    refused = snakemake("--dry-run", "--directory", tmp_path, "--configfile", tiny, "--config", "budgets=[many]", check=False)
    assert refused.returncode != 0 and "budgets" in refused.stdout + refused.stderr


def test_nested_options_given_on_the_command_line_have_the_schemas_types(tmp_path):
    """`--config 'train={hidden: [24, 24], lr: 0.002}'` arrives as strings too: the training
    jobs get the integers and the number, and a value of no allowed type is still refused."""
    tiny = ROOT / "tests" / "config" / "tiny.yaml"
    given = snakemake("--dry-run", "--printshellcmds", "--directory", tmp_path, "--configfile", tiny,
                      "--config", "train={hidden: [24, 24], lr: 0.002, early_stopping: false}")
    options = [json.loads(re.search(r"--options '([^']*)'", line).group(1))
               for line in given.stdout.splitlines() if " train --task " in line]
    assert options and all(o["hidden"] == [24, 24] and o["lr"] == 0.002 and o["early_stopping"] is False
                           for o in options)
    refused = snakemake("--dry-run", "--directory", tmp_path, "--configfile", tiny,
                        "--config", "train={hidden: [wide]}", check=False)
    assert refused.returncode != 0 and "wide" in refused.stdout + refused.stderr


@pytest.mark.skipif(not LAL, reason="the paper's tasks include gravitational_waves (the gw extra)")
def test_dry_run_of_paper_config(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", ROOT / "config" / "paper.yaml")
    counts = job_counts(result.stdout)
    assert counts["train"] == expected_jobs(config)["train"] == len(config["tasks"]) * 2 * 8


@pytest.mark.parametrize(
    "override, message",
    [
        ({"colour": "blue"}, "Additional properties are not allowed ('colour' was unexpected)"),
        ({"budgets": [-5]}, "-5 is less than the minimum of 2"),
        ({"budgets": [10.5]}, "10.5 is not of type 'integer'"),
        ({"budgets": [1 << 20]}, "budgets [1048576] exceed simulation.train"),
        ({"tasks": ["weinberg2"]}, ("config: task 'weinberg2' is neither built-in", "nor under `plugins:`")),
        ({"variants": {"exact": {"base": "nre"}}}, "config: variants.exact: 'exact' is the name of a method or of the exact posterior"),
        ({"variants": {"bnre_x": {"base": "bnre", "train": {"bce": "median"}}}}, "'median' is not one of ['mean', 'sum']"),
        ({"variants": {"bnre_x": {"base": "bnre", "train": {"lamda": 5}}}}, ("('lamda' was unexpected)", "On instance['variants']['bnre_x']['train']")),
        ({"variants": {"bnre_x": {"base": "bnre", "train": {"lambda": -5}}}}, "-5 is less than the minimum of 0"),
        ({"variants": {"bnre_x": {"base": "bnre", "options": {}}}}, "('options' was unexpected)"),
        ({"variants": {"c": {"base": "cnre", "train": {"cardinality": 0}}}}, "0 is less than the minimum of 1"),
        ({"variants": {"c": {"base": "cnre", "train": {"gamma": 0}}}}, "0 is less than or equal to the minimum of 0"),
        ({"variants": {"f": {"base": "npe", "train": {"flow": "glow"}}}}, "'glow' is not one of ['nsf', 'maf']"),
        ({"methods": ["nre", "cnre"], "train": {"cardinality": 40, "batch_size": 64}},
         "config: method cnre on task gaussian: batch_size 64 is below 2 * cardinality (80)"),
        ({"evaluate": {"bins": 1, "pairs": 10}}, "1 is less than the minimum of 2"),
        # the adaptive grid's settings, each named
        ({"evaluate": {"grid": "hexagonal"}}, ("'hexagonal' is not one of ['adaptive', 'uniform']", "['evaluate']['grid']")),
        ({"evaluate": {"coarse_bins": 1}}, ("1 is less than the minimum of 2", "['evaluate']['coarse_bins']")),
        ({"evaluate": {"refine_depth": 0}}, ("0 is less than the minimum of 1", "['evaluate']['refine_depth']")),
        ({"evaluate": {"refine_depth": 31}}, ("31 is greater than the maximum of 30", "['evaluate']['refine_depth']")),
        ({"evaluate": {"refine_tolerance": 0}}, ("0 is less than or equal to the minimum of 0", "['evaluate']['refine_tolerance']")),
        ({"evaluate": {"refine_tolerance": 1}}, ("1 is greater than or equal to the maximum of 1", "['evaluate']['refine_tolerance']")),
        ({"train": {"lambda": -1}}, "-1 is less than the minimum of 0"),
        ({"train": {"epochs": "many"}}, "'many' is not of type 'integer'"),
        ({"resources": {"trian": {"gpu": 1}}}, "Additional properties are not allowed ('trian' was unexpected)"),
        ({"resources": {"train": {"gpu": -1}}}, "-1 is less than the minimum of 0"),
        ({"resources": {"train": {"tasks": {"foo": {"gpu": 1}}}}}, "config: resources.train.tasks: ['foo'] are not tasks"),
        ({"resources": {"train": {"tasks": {"slcp": {"memory": 3}}}}}, "('memory' was unexpected)"),
        # the schema's $defs/train_override checks the overrides (and names where the error is)
        ({"train": {"tasks": {"slcp": {"shuffle_blok": 8}}}},
         ("Unevaluated properties are not allowed ('shuffle_blok' was unexpected)", "On instance['train']['tasks']['slcp']")),
        ({"train": {"tasks": {"slcp": {"shuffle_block": 0}}}},
         ("0 is less than the minimum of 1", "On instance['train']['tasks']['slcp']['shuffle_block']")),
        ({"train": {"tasks": {"slcp": {"tasks": {}}}}}, "('tasks' was unexpected)"),
        ({"train": {"batch_size": 1}}, "1 is less than the minimum of 2"),
        # seeds, each named (tiny.yaml's own `seed: 3` is left out where `seeds` is given)
        ({"seeds": []}, "config: seeds must be a non-empty list of seeds, got []"),
        ({"seeds": [2, 5, 2]}, "config: seeds: seed(s) [2] given more than once"),
        ({"seeds": [1, -1]}, "config: seeds: -1 is not a seed (an integer >= 0)"),
        ({"seed": -1}, "config: seed: -1 is not a seed (an integer >= 0)"),
    ],
)
def test_bad_config_is_refused_before_any_job(tmp_path, override, message):
    """The schema's refusals, and a few of the cross-key checks end to end (all of those are
    called directly in tests/workflow/test_settings.py)."""
    config = yaml.safe_load(TINY.read_text())
    if "seeds" in override:
        del config["seed"]
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", path, check=False)
    assert result.returncode != 0
    for part in (message,) if isinstance(message, str) else message:
        assert part in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (np.zeros((2, 3)), "do not match task 'gaussian', whose x has shape (2,)"),
        (np.array([[0.0, 0.0], [0.0, np.nan], [np.inf, 1.0]]), "observation(s) [1, 2] hold NaN or infinite values"),
    ],
)
def test_a_bad_observation_file_is_refused_before_any_job_naming_file_and_rows(tmp_path, content, message):
    """Not only by the infer job, after every simulation and training has run."""
    config = yaml.safe_load(TINY.read_text())
    np.save(tmp_path / "observed.npy", content)
    config["observations"] = {"gaussian": [str(tmp_path / "observed.npy")]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", path, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config: observations.gaussian:" in output and "observed.npy" in output and message in output
    assert not (tmp_path / "data").exists()


def test_seed_and_seeds_both_in_the_user_s_files_are_refused_before_any_job(tmp_path):
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text("seeds: [3, 4]\n")  # tiny.yaml gives seed: 3
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", TINY, seeds, check=False)
    assert result.returncode != 0
    assert f"config: seed (in {TINY}) and seeds (in {seeds}) are both given" in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()
    # --config takes precedence over the files: one place, no conflict
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", TINY, "--config", "seeds=[3,4]")
    assert job_counts(result.stdout)["train"] == 2 * expected_jobs(yaml.safe_load(TINY.read_text()))["train"]


def test_two_seeds_have_their_own_data_models_and_rows(tmp_path):
    from bnre.simulation.pairs import read_pairs

    config = yaml.safe_load(TINY.read_text())
    del config["seed"]
    config.update(seeds=[3, 4], tasks=["gaussian"], methods=["nre"], budgets=[256])
    path = tmp_path / "two_seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake("--cores", "2", "--directory", tmp_path, "--configfile", path)
    tests = {s: read_pairs(tmp_path / "data" / "gaussian" / f"seed{s}" / "test.h5") for s in (3, 4)}
    assert {int(t.attrs["seed"]) for t in tests.values()} == {3, 4}
    assert not np.array_equal(tests[3].theta, tests[4].theta)  # each seed its own pools
    import torch

    members = {s: torch.load(tmp_path / "models" / "gaussian" / f"seed{s}" / "nre" / "256.pt", weights_only=True)
               for s in (3, 4)}
    assert members[3]["config"]["seed"] == 3 and members[4]["config"]["seed"] == 4
    assert not set(members[3]["member_seeds"]) & set(members[4]["member_seeds"])
    summary = pd.read_csv(tmp_path / "results" / "summary.csv", dtype={"replicate": str})
    assert set(summary.seed) == {3, 4}
    rows = summary.groupby("seed").size()
    assert rows[3] == rows[4] and set(summary[summary.seed == 3].metric) == set(summary[summary.seed == 4].metric)
    auc = summary[(summary.metric == "coverage_auc") & (summary.replicate == "ensemble") & (summary.method == "nre")]
    assert len(auc) == 2 and auc.value.nunique() == 2  # independent data, different values
    for table in ("coverage", "calibration"):
        assert set(pd.read_csv(tmp_path / "results" / f"{table}.csv").seed) == {3, 4}
    histories = pd.concat(pd.read_csv(p) for p in (tmp_path / "models").rglob("*.history.csv"))
    assert set(histories.seed) == {3, 4}
    for stem in ("coverage_gaussian", "coverage_auc", "training_gaussian", "posterior_gaussian"):
        assert (tmp_path / "figures" / f"{stem}.png").stat().st_size > 10_000
    tables = subprocess.run([sys.executable, "-m", "bnre", "tables", str(tmp_path / "results" / "summary.csv")],
                            capture_output=True, text=True, check=True).stdout
    assert "±" in tables  # the ensembles of two seeds: mean ± sd


@pytest.fixture(scope="module")
def tiny_run(tiny_workflow):
    # the session's one local run of the tiny config (tests/conftest.py), shared with the
    # incremental re-run, environment and SLURM tests
    return tiny_workflow, None


def test_tiny_config_runs_end_to_end(tiny_run):
    workdir, _ = tiny_run
    config = yaml.safe_load(TINY.read_text())
    summary = pd.read_csv(workdir / "results" / "summary.csv", dtype={"replicate": str})
    assert list(summary.columns) == ["task", "seed", "method", "budget", "replicate", "metric", "value"]
    assert set(summary.task) == set(config["tasks"]) and set(summary.seed) == {config["seed"]}
    # both tiny tasks are tractable: their exact posterior is a reference "method"
    assert set(summary.method) == {"nre", "bnre", "exact"}
    assert set(summary.budget) == set(config["budgets"])
    assert set(summary.replicate) == {str(k) for k in range(config["replicates"])} | {"ensemble"}
    assert set(summary[summary.method == "exact"].replicate) == {"ensemble"}
    assert {"coverage_auc", "log_posterior", "balancing", "kl_exact", "tarp_auc"} <= set(summary.metric)
    auc = summary[summary.metric == "coverage_auc"].value
    assert auc.between(-0.5, 0.5).all()
    estimators = summary[summary.method != "exact"]
    assert (estimators[estimators.metric == "kl_exact"].value > 0).all()
    exact = summary[(summary.method == "exact") & (summary.metric == "log_posterior")]
    assert exact.groupby("task").value.nunique().eq(1).all()  # the same at every budget
    curves = pd.read_csv(workdir / "results" / "coverage.csv")
    assert curves.coverage.between(0, 1).all()
    calibration = pd.read_csv(workdir / "results" / "calibration.csv", dtype={"replicate": str})
    assert set(calibration.diagnostic) == {"sbc", "marginal_hpd", "tarp"}
    assert calibration.value.between(0, 1).all()
    for task in config["tasks"]:
        assert (workdir / "figures" / f"coverage_{task}.png").stat().st_size > 10_000
        assert (workdir / "figures" / f"calibration_{task}.png").stat().st_size > 10_000
    for stem in ("coverage_auc", "log_posterior", "balancing", "kl_exact"):
        assert (workdir / "figures" / f"{stem}.png").stat().st_size > 10_000
    for task in config["tasks"]:
        assert (workdir / "figures" / f"training_{task}.png").stat().st_size > 10_000
        assert (workdir / "figures" / f"posterior_{task}.png").stat().st_size > 10_000
    # every job left a log and a benchmark record; intermediate blocks were removed
    assert any((workdir / "logs" / "train").rglob("*.log"))
    assert any((workdir / "logs" / "benchmarks" / "evaluate").rglob("*.tsv"))
    assert not any((workdir / "data").rglob("blocks/*/*.h5"))


def test_completed_run_has_nothing_to_do(tiny_run):
    workdir, _ = tiny_run
    result = snakemake("--dry-run", "--directory", workdir, "--configfile", TINY)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_has_no_findings():
    result = snakemake("--lint", "--configfile", TINY)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_clean():
    files = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
    assert shutil.which("snakefmt"), "snakefmt is part of the test extra"
    result = subprocess.run(["snakefmt", "--check", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_report_is_self_contained_with_every_figure_and_the_summary(tiny_run, tmp_path):
    workdir, _ = tiny_run
    report = tmp_path / "report.html"
    snakemake("--directory", workdir, "--configfile", TINY, "--report", report)
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 100_000
    for name in ("coverage_slcp.png", "coverage_auc.png", "training_gaussian.png", "posterior_slcp.png", "summary.csv",
                 "calibration_slcp.png", "kl_exact.png", "calibration.csv"):
        assert name in html
    assert "credibility level" in html  # a caption


#: configs that are overlays, run after the config they extend (`--configfile BASE OVERLAY`)
OVERLAYS = {"ablation_8192.yaml": "ablation.yaml", "methods.yaml": "laptop.yaml", "amp.yaml": "laptop.yaml",
            "calibrated.yaml": "laptop.yaml"}
CONFIGS = sorted((ROOT / "tests" / "config").glob("*.yaml")) + [
    p for p in sorted((ROOT / "config").glob("*.yaml")) if p.name != "schema.yaml"
] + sorted((ROOT / "examples").glob("*/config.yaml"))


def merged(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base``, nested mappings merged key by key (as Snakemake does)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_config_builds_its_dag(config, tmp_path):
    files = [config.parent / OVERLAYS[config.name], config] if config.name in OVERLAYS else [config]
    values: dict = {}
    for path in files:
        values = merged(values, yaml.safe_load(path.read_text()))
    if "gravitational_waves" in values["tasks"] and not LAL:
        pytest.skip("lalsuite not installed (the gw extra)")
    result = snakemake("--dry-run", "--directory", tmp_path, "--configfile", *files)
    counts = job_counts(result.stdout)
    assert counts == {**expected_jobs(values, config.parent), "total": counts["total"]}


def test_every_other_task_runs_through_the_dag(tmp_path):
    config = ROOT / "tests" / "config" / "tiny_tasks.yaml"
    tasks = yaml.safe_load(config.read_text())["tasks"]
    snakemake("--cores", "2", "--directory", tmp_path, "--configfile", config)
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert set(summary.task) == set(tasks)
    assert summary[summary.metric == "coverage_auc"].value.between(-0.5, 0.5).all()
    for task in tasks:
        assert (tmp_path / "figures" / f"coverage_{task}.png").exists()
        assert (tmp_path / "figures" / f"posterior_{task}.png").exists()


@pytest.mark.skipif(not LAL, reason="lalsuite not installed (the gw extra)")
def test_gravitational_wave_task_runs_through_the_dag_streaming_its_data(tmp_path):
    config = ROOT / "tests" / "config" / "tiny_gravitational_waves.yaml"
    snakemake("--cores", "2", "--directory", tmp_path, "--configfile", config)
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert set(summary.task) == {"gravitational_waves"} and set(summary.method) == {"nre", "bnre"}
    assert summary[summary.metric == "coverage_auc"].value.between(-0.5, 0.5).all()
    for method in ("nre", "bnre"):
        log = (tmp_path / "logs" / "train" / "gravitational_waves" / "seed5" / method / "128.log").read_text()
        assert "streaming" in log  # 8 MB of training x, a 4 MB limit
    assert (tmp_path / "figures" / "posterior_gravitational_waves.png").exists()


def test_gravitational_wave_task_without_lalsuite_is_refused_before_any_job(tmp_path):
    """Without conda and without the gw extra: a clear error naming the fix, no job run."""
    config = ROOT / "tests" / "config" / "tiny_gravitational_waves.yaml"
    result = subprocess.run(
        # snakemake with lalsimulation hidden from importlib.util.find_spec, which bnre.workflow.settings asks
        [sys.executable, "-c",
         "import importlib.util, sys\n"
         "find = importlib.util.find_spec\n"
         "importlib.util.find_spec = lambda name, *a: None if name == 'lalsimulation' else find(name, *a)\n"
         "from snakemake.cli import main\n"
         "sys.argv = ['snakemake', *sys.argv[1:]]\n"
         "main()\n",
         "-s", str(ROOT / "Snakefile"), "-n", "--directory", str(tmp_path), "--configfile", str(config)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "task 'gravitational_waves' needs the lalsimulation module" in result.stdout + result.stderr
    assert 'pip install "bnre-workflow[gw]"' in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


def test_every_method_runs_through_the_whole_dag(tmp_path):
    """NRE, BNRE, the contrastive methods, the flows and the calibration-regularised methods
    in one run: each is its own cell with
    every diagnostic, its own colour in the figures, and NPE's observed posterior is drawn
    from its flow (the ratio methods' from the grid)."""
    config_path = ROOT / "tests" / "config" / "tiny_methods.yaml"
    config = yaml.safe_load(config_path.read_text())
    result = snakemake("--cores", "2", "--directory", tmp_path, "--configfile", config_path)
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    methods = config["methods"]
    assert set(summary.method) == {*methods, "exact"}
    for method in methods:
        rows = summary[(summary.method == method) & (summary.replicate == "ensemble")].set_index("metric").value
        for metric in ("coverage_auc", "log_posterior", "balancing", "kl_exact", "tarp_auc", "hdr_size_0.90"):
            assert np.isfinite(rows[metric]), (method, metric)
    intervals = pd.concat(pd.read_csv(p) for p in (tmp_path / "results" / "gaussian").rglob("observed/*/intervals.csv"))
    samplers = intervals.groupby("method").sampler.first().to_dict()
    assert samplers == {m: "flow" if m in ("npe", "bnpe", "calnpe") else "grid" for m in methods}
    assert (tmp_path / "figures" / "coverage_gaussian.png").stat().st_size > 0
    assert "Nothing to be done" in snakemake("--dry-run", "--directory", tmp_path, "--configfile", config_path).stdout
    assert result.returncode == 0


def test_a_seventh_method_is_its_module_and_one_registry_line(tmp_path):
    """A toy method in a module of its own, registered by one line in bnre.registry.methods,
    runs through the tiny DAG: the schema, the rules and the CLI are untouched."""
    copy = copy_checkout(tmp_path / "repo")
    methods = copy / "src" / "bnre" / "methods"
    (methods / "toy.py").write_text(
        '"""NRE under another name: a seventh method."""\n\nfrom .nre import NRE\n\n\n'
        'class Toy(NRE):\n    name = "toy"\n'
    )
    registry = copy / "src" / "bnre" / "registry" / "methods.py"
    text = registry.read_text()
    last = '    "bnpe": MethodEntry('
    assert text.count(last) == 1
    registry.write_text(text.replace(last, '    "toy": MethodEntry("bnre.methods.toy:Toy", _CLASSIFIER | {"bce", "marginals"}),\n' + last))
    config = yaml.safe_load(TINY.read_text())
    config.update(tasks=["gaussian"], methods=["nre", "toy"], budgets=[256])
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--cores", "2", "--directory", str(workdir),
         "--configfile", str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert {"nre", "toy"} <= set(summary.method)
    # trained as NRE is, on the same members' subsets and initialisations: the same models
    assert np.allclose(summary[summary.method == "toy"].value.to_numpy(), summary[summary.method == "nre"].value.to_numpy())
