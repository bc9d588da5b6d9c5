"""bnre.workflow.jobs: what each job is given, as tracked parameters."""

import json
from pathlib import Path

from bnre.methods.config import TrainConfig
from bnre.registry import methods as method_registry
from bnre.workflow import jobs, settings

from test_settings import validated

ROOT = Path(__file__).resolve().parents[2]


def test_train_options_are_what_train_config_reads_and_leave_out_what_the_method_ignores():
    config = validated(methods=["nre", "bnre", "npe"], train={"lambda": 7.0, "gamma": 2.0})
    for method in ("nre", "bnre", "npe"):
        options = json.loads(jobs.train_options(config, "gaussian", method, 3))
        TrainConfig(**options)  # every key a field, every value accepted
        assert options["method"] == method and options["name"] == method
        assert not set(options) & set(method_registry.EXECUTION_OPTIONS)
        assert "gamma" not in options  # no contrastive method here
    assert json.loads(jobs.train_options(config, "gaussian", "bnre", 3))["lmbda"] == 7.0
    assert json.loads(jobs.train_options(config, "gaussian", "nre", 3))["lmbda"] == 0.0  # neutral
    assert "hidden" not in json.loads(jobs.train_options(config, "gaussian", "npe", 3))


def test_an_option_of_other_methods_leaves_a_method_s_options_unchanged():
    before = validated(methods=["nre", "bnre"])
    after = validated(methods=["nre", "bnre"], train={"lambda": 3.0, "flow": "maf", "cardinality": 5})
    assert jobs.train_options(before, "slcp", "nre", 3) == jobs.train_options(after, "slcp", "nre", 3)
    assert jobs.train_options(before, "slcp", "bnre", 3) != jobs.train_options(after, "slcp", "bnre", 3)


def test_evaluation_options_are_the_chosen_grid_s_only():
    adaptive = validated(evaluate={"bins": 33, "precision": "bf16"})
    for command in jobs.COMMAND_OPTIONS:  # the uniform grid's settings change no adaptive job
        assert jobs.evaluation_options(adaptive, command) == jobs.evaluation_options(validated(), command)
    assert json.loads(jobs.evaluation_options(adaptive, "infer")) == {
        "grid": "adaptive", "coarse_bins": 8, "refine_cells": 1024, "refine_depth": 16, "refine_tolerance": 0.0001}
    uniform = validated(evaluate={"grid": "uniform", "bins": 33})
    assert json.loads(jobs.evaluation_options(uniform, "evaluate-exact")) == {
        "grid": "uniform", "bins": 33, "max_cells": 32768, "pairs": uniform["evaluate"]["pairs"]}


def test_a_job_s_code_hash_is_its_command_s_for_its_task():
    package = ROOT / "src" / "bnre"
    simulate = jobs.code_hash(("simulate",), "slcp", {}, package)
    assert simulate != jobs.code_hash(("simulate",), "gaussian", {}, package)
    assert simulate != jobs.code_hash(("train",), "slcp", {}, package)
    assert simulate == jobs.code_hash(("simulate",), "slcp", {}, package)
    assert settings.BUILTIN_TRACTABLE == ("gaussian", "slcp", "weinberg", "two_moons")
