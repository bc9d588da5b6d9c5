"""bnre.workflow.settings: the config's cross-key checks and the tasks it names, called
directly on configs validated against config/schema.yaml (defaults filled in), without
Snakemake. tests/test_workflow.py keeps a few of these cases end to end."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from bnre.workflow import ConfigError, settings

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text())


def validated(**overrides) -> dict:
    """The tiny config with ``overrides`` (a dict merges into a dict), validated."""
    config = copy.deepcopy(TINY)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    validate(config, schema=str(ROOT / "config" / "schema.yaml"))
    return config


def check(config, config_files=()):
    """Every check the workflow runs on a config before any job, in its order."""
    settings.check_config(config)
    settings.check_optional_tasks(config, conda=True)
    plugins = settings.task_plugins(config, config_files)
    settings.check_task_overrides(config, plugins)
    settings.observation_files(config, config_files)
    settings.check_method_options(config)


def test_the_tiny_config_passes():
    check(validated())


def test_the_calibration_options_pass_with_a_calibrated_method():
    check(validated(methods=["nre", "calnpe"], train={"dcp_samples": 4, "dcp_calibration": True}))


def test_the_schema_refuses_an_unknown_dcp_step_and_passes_the_log_step():
    with pytest.raises(WorkflowError, match=r"(?s)'log' is not one of \['density', 'log_density'\].*dcp_step"):
        validated(methods=["calnre"], train={"dcp_step": "log"})
    check(validated(methods=["calnre"], train={"dcp_step": "log_density"}))


@pytest.mark.parametrize("key, value", [("dcp_samples", 0), ("dcp_lambda", -1), ("dcp_sort_strength", 0)])
def test_the_schema_refuses_calibration_options_out_of_bounds(key, value):
    with pytest.raises(WorkflowError, match=rf"(?s)less than.*instance\['train'\]\['{key}'\]"):
        validated(methods=["calnre"], train={key: value})


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(budgets=[1 << 20]), "config: budgets [1048576] exceed simulation.train = 1024"),
        (dict(tasks=["weinberg2"]), "config: task 'weinberg2' is neither built-in (gaussian, slcp,"),
        (dict(methods=["snre"]), "methods ['snre'] are neither methods (nre, bnre, cnre, bnre_c, npe, bnpe, calnre, calnpe) nor variants"),
        (dict(variants={"bnre_x": {"base": "snre"}}),
         "config: variants.bnre_x.base: 'snre' is not one of the methods (nre, bnre, cnre, bnre_c, npe, bnpe, calnre, calnpe)"),
        (dict(variants={"bnre": {"base": "bnre"}}), "config: variants.bnre: 'bnre' is the name of a method or of the exact posterior"),
        (dict(variants={"exact": {"base": "nre"}}), "config: variants.exact: 'exact' is the name of a method"),
        (dict(methods=["nre", "npe_x"], variants={"npe_x": {"base": "npe", "train": {"gamma": 2, "flow": "maf"}}}),
         "config: variants.npe_x.train sets gamma, which its base method npe does not use (gamma is an option of bnre_c, cnre only)"),
        (dict(variants={"nre_x": {"base": "nre", "train": {"flow_hidden": [8], "lambda": 5}}}),
         "variants.nre_x.train sets flow_hidden, lambda, which its base method nre does not use"),
        (dict(methods=["nre", "cnre"], train={"cardinality": 40, "batch_size": 64}),
         "config: method cnre on task gaussian: batch_size 64 is below 2 * cardinality (80)"),
        (dict(variants={"nre_x": {"base": "nre", "train": {"dcp_calibration": True}}}),
         "variants.nre_x.train sets dcp_calibration, which its base method nre does not use "
         "(dcp_calibration is an option of calnpe, calnre only)"),
        (dict(train={"dcp_samples": 4}),
         "config: train sets dcp_samples = 4 (for task gaussian), an option of the calibration regulariser "
         "(calnre, calnpe only), but none of the methods (nre, bnre) has one"),
        (dict(train={"tasks": {"slcp": {"dcp_lambda": 2.0}}}), "train sets dcp_lambda = 2.0 (for task slcp)"),
        (dict(evaluate={"refine_cells": 20, "coarse_bins": 16}),
         "config: evaluate.refine_cells = 20 cannot hold the coarse grid of evaluate.coarse_bins = 16"),
        (dict(evaluate={"pairs": 10**6}), "evaluate.pairs = 1000000 exceeds simulation.test"),
        (dict(resources={"train": {"tasks": {"foo": {"gpu": 1}}}}), "config: resources.train.tasks: ['foo'] are not tasks"),
        (dict(train={"tasks": {"slpc": {"lambda": 1}}}), "config: train.tasks: ['slpc'] are not tasks (built-in:"),
        (dict(plugins={"slcp": "my.module:Task"}), "config: plugins ['slcp'] are names of built-in tasks"),
        (dict(tasks=["mine"], plugins={"mine": "no_such_module_here:Task"}),
         "config: plugins.mine: module 'no_such_module_here' is not importable"),
        (dict(observations={"weinberg": ["x.npy"]}), "config: observations.weinberg: 'weinberg' is not one of `tasks`"),
        (dict(observations={"gaussian": ["a/x.npy", "b/x.npy"]}), "config: observations.gaussian: several files are named ['x']"),
        (dict(observations={"gaussian": ["missing.npy"]}), "config: observations.gaussian: no file missing.npy"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        check(validated(**overrides))
    assert message in str(error.value)


def test_a_task_needing_an_extra_is_refused_without_conda_only(monkeypatch):
    config = validated(tasks=["gravitational_waves"])
    real = settings.importlib.util.find_spec
    monkeypatch.setattr(settings.importlib.util, "find_spec", lambda name, *a: None if name == "lalsimulation" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs the lalsimulation module.*pip install \"bnre-workflow\[gw\]\""):
        settings.check_optional_tasks(config, conda=False)
    settings.check_optional_tasks(config, conda=True)  # the conda environment installs it


def test_files_are_found_next_to_the_last_config_file_first(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        np.save(folder / "x.npy", np.zeros(2))
    monkeypatch.chdir(tmp_path)
    files = [first / "one.yaml", second / "two.yaml"]
    assert settings.config_file("observations.gaussian", "x.npy", files) == (second / "x.npy").resolve()
    assert settings.config_file("observations.gaussian", str(first / "x.npy"), files) == (first / "x.npy").resolve()


def test_a_plugin_from_a_file_is_loaded_from_where_the_config_names_it(tmp_path):
    (tmp_path / "mine.py").write_text("class Mine:\n    name = 'mine'\n")
    config = validated(tasks=["mine"], plugins={"mine": "mine.py:Mine"})
    plugins = settings.task_plugins(config, [tmp_path / "config.yaml"])
    source, file, cls = plugins["mine"]
    assert file == (tmp_path / "mine.py").resolve() and cls == "Mine" and source == f"mine={file}:Mine"


def test_train_options_are_the_defaults_then_the_task_s_then_the_variant_s():
    config = validated(
        train={"lr": 0.01, "tasks": {"slcp": {"lr": 0.02, "epochs": 7}}},
        methods=["nre", "bnre_fast"], variants={"bnre_fast": {"base": "bnre", "train": {"lr": 0.03}}},
    )
    assert settings.task_train_options(config, "gaussian", "nre")["lr"] == 0.01
    slcp = settings.task_train_options(config, "slcp", "nre")
    assert slcp["lr"] == 0.02 and slcp["epochs"] == 7
    assert settings.task_train_options(config, "slcp", "bnre_fast")["lr"] == 0.03
    assert settings.method_base(config, "bnre_fast") == "bnre" and settings.method_base(config, "nre") == "nre"


def test_seeds_are_the_list_or_the_user_s_single_seed():
    # the default config's seeds, unless the user's files or --config give seed
    assert settings.resolve_seeds({"seeds": [1]}, {}, {}) == [1]
    assert settings.resolve_seeds({"seeds": [1, 2, 3]}, {"mine.yaml": {"seeds": [1, 2, 3]}}, {}) == [1, 2, 3]
    assert settings.resolve_seeds({"seeds": [1], "seed": 3}, {"mine.yaml": {"seed": 3}}, {}) == [3]
    assert settings.resolve_seeds({"seeds": [1], "seed": 3}, {}, {"seed": "3"}) == [3]
    # --config takes precedence over the files, so it may give the other key
    assert settings.resolve_seeds({"seeds": [3, 4], "seed": 3}, {"mine.yaml": {"seed": 3}}, {"seeds": "[3,4]"}) == [3, 4]
    # a module's config (no files of the user's): its seed
    assert settings.resolve_seeds({"seed": 2}, {}, {}) == [2]


@pytest.mark.parametrize("config, files, command_line, message", [
    ({"seeds": [1], "seed": 1}, {"a.yaml": {"seed": 1}, "b.yaml": {"seeds": [1]}}, {},
     "config: seed (in a.yaml) and seeds (in b.yaml) are both given; give seeds only"),
    ({"seeds": [1], "seed": 1}, {"a.yaml": {"seed": 1, "seeds": [1]}}, {}, "seed (in a.yaml) and seeds (in a.yaml)"),
    ({"seeds": [1], "seed": 1}, {}, {"seed": "1", "seeds": "[1]"}, "seed (in --config) and seeds (in --config)"),
    ({"seeds": []}, {}, {}, "config: seeds must be a non-empty list of seeds, got []"),
    ({"seeds": 4}, {}, {}, "config: seeds must be a non-empty list of seeds, got 4"),
    ({"seeds": [1, 2, 1, 2]}, {}, {}, r"config: seeds: seed(s) [1, 2] given more than once"),
    ({"seeds": [0, -3]}, {}, {}, "config: seeds: -3 is not a seed (an integer >= 0)"),
    ({"seeds": [1.5]}, {}, {}, "config: seeds: 1.5 is not a seed"),
    ({"seeds": [True]}, {}, {}, "config: seeds: True is not a seed"),
    ({"seed": -1}, {"a.yaml": {"seed": -1}}, {}, "config: seed: -1 is not a seed"),
])
def test_bad_seeds_are_refused_naming_the_key(config, files, command_line, message):
    with pytest.raises(ConfigError) as error:
        settings.resolve_seeds(config, files, command_line)
    assert message in str(error.value)
