"""bnre.workflow.schema: Snakemake's --config strings read as the schema's types."""

from pathlib import Path

import pytest
import yaml

from bnre.workflow import ConfigError
from bnre.workflow.schema import command_line_typed, read_as_schema_type, schema_at

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())


def test_strings_are_read_as_the_schema_s_types():
    typed = command_line_typed(
        {"budgets": ["1024", "2048"], "train": {"hidden": ["64", "64"], "lr": "0.01", "amp": "true"},
         "evaluate": {"refine_cells": "null"}, "tasks": ["slcp"]},
        SCHEMA, SCHEMA,
    )
    assert typed == {"budgets": [1024, 2048], "train": {"hidden": [64, 64], "lr": 0.01, "amp": True},
                     "evaluate": {"refine_cells": None}, "tasks": ["slcp"]}


def test_a_string_of_no_allowed_type_is_left_for_the_validation():
    assert read_as_schema_type("many", ["integer"]) == "many"
    assert command_line_typed({"budgets": ["many"]}, SCHEMA, SCHEMA) == {"budgets": ["many"]}


def test_only_local_references_are_followed():
    root = {"a": {"b": {"type": "integer"}}}
    assert schema_at(root, {"$ref": "#/a/b"}) == {"type": "integer"}
    with pytest.raises(ConfigError, match="only local"):
        schema_at(root, {"$ref": "https://example.org/schema"})
