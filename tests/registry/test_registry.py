"""bnre.registry: what the package and the workflow both know. The package builds its
methods and tasks from it, the workflow reads it, and the rules hold no copy of it."""

import dataclasses
import re
from pathlib import Path

import yaml

from bnre.methods import METHODS
from bnre.methods.config import EXECUTION_OPTIONS, TrainConfig
from bnre.registry import methods as method_registry
from bnre.registry import tasks as task_registry
from bnre.tasks import TASKS, Task

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
OPTIONS = SCHEMA["$defs"]["train_options"]["properties"]


def test_the_registry_names_the_package_s_methods_and_tasks():
    """bnre.registry is what the package builds its methods and tasks from: each entry's
    class has the entry's name, and a task is tractable exactly where the registry says."""
    assert list(METHODS) == list(method_registry.METHODS)
    for name, method in METHODS.items():
        assert method.name == name
    assert list(TASKS) == list(task_registry.TASKS)
    for name, entry in task_registry.TASKS.items():
        cls = TASKS[name]
        assert cls.name == name
        assert (cls.log_likelihood is not Task.log_likelihood) == entry.tractable, name  # Task.tractable
    for task in TASKS:  # the schema's description lists them
        assert task in SCHEMA["properties"]["tasks"]["description"]
    for method in METHODS:
        assert method in SCHEMA["properties"]["variants"]["additionalProperties"]["properties"]["base"]["description"]


def test_the_registry_s_method_options_are_training_options():
    """Every method-specific option is a field of TrainConfig and a key of the schema's
    training options, and every option that has a neutral value is one of them."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in method_registry.METHOD_OPTIONS:
        assert method_registry.field(key) in fields and key in OPTIONS, key
    assert set(method_registry.NEUTRAL_OPTIONS) <= method_registry.METHOD_OPTIONS
    assert set(EXECUTION_OPTIONS) <= fields


def test_the_rules_name_no_method_task_or_option_of_their_own():
    """rules/ reads every method, task and method option from the registry: none is
    written there as a string (the package's own name, bnre, is also a method's)."""
    names = set(method_registry.METHODS) | set(task_registry.TASKS) | method_registry.METHOD_OPTIONS
    found = []
    for path in sorted((ROOT / "rules").glob("*.smk")) + [ROOT / "Snakefile"]:
        for literal in re.findall(r"""["']([a-z_0-9]+)["']""", path.read_text()):
            if literal in names - {"bnre"}:
                found.append((path.name, literal))
    assert found == []
