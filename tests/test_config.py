"""One source of truth for the training options: the package's TrainConfig, the workflow's
JSON schema and config/README.md state the same options, defaults, bounds and choices."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from bnre.config import CHOICES, EXECUTION_OPTIONS, TrainConfig
from bnre.nn import ACTIVATIONS
from bnre.registry import methods as method_registry

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
OPTIONS = SCHEMA["$defs"]["train_options"]["properties"]  # types and bounds
DEFAULTS = {k: v["default"] for k, v in SCHEMA["properties"]["train"]["properties"].items() if k != "tasks"}
#: schema key -> TrainConfig field, where they differ
FIELD = method_registry.CONFIG_FIELDS
#: TrainConfig fields that come from the top level of the workflow config, or (name) from
#: the variant that a method is
TOP_LEVEL = {"method", "replicates", "seed", "name"}


def field_defaults() -> dict:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory() for f in dataclasses.fields(TrainConfig)}


def test_the_schema_and_the_package_agree_on_the_choices():
    assert OPTIONS["activation"]["enum"] == list(ACTIVATIONS)
    for key, choices in CHOICES.items():
        assert OPTIONS[key]["enum"] == list(choices), key
        assert DEFAULTS[key] == choices[0], key


def test_schema_options_and_defaults_are_trainconfig_s():
    fields = field_defaults()
    assert {FIELD.get(k, k) for k in OPTIONS} == set(fields) - TOP_LEVEL
    assert set(DEFAULTS) == set(OPTIONS)
    for key, default in DEFAULTS.items():
        assert fields[FIELD.get(key, key)] == default, key
    assert fields["replicates"] == SCHEMA["properties"]["replicates"]["default"]
    assert fields["seed"] == SCHEMA["properties"]["seed"]["default"]
    assert set(EXECUTION_OPTIONS) <= set(OPTIONS)


def bounds():
    for key, spec in OPTIONS.items():
        for bound in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if bound in spec:
                yield key, bound, spec[bound], spec["type"]


@pytest.mark.parametrize("key, bound, value, kind", list(bounds()))
def test_trainconfig_refuses_what_the_schema_refuses(key, bound, value, kind):
    name = FIELD.get(key, key)
    step = 1 if kind == "integer" else 1e-9
    inside = {"minimum": value, "exclusiveMinimum": value + step, "maximum": value, "exclusiveMaximum": value - step}[bound]
    outside = {"minimum": value - step, "exclusiveMinimum": value, "maximum": value + step, "exclusiveMaximum": value}[bound]
    TrainConfig(**{name: type(DEFAULTS[key])(inside) if kind == "integer" else inside})
    with pytest.raises(ValueError, match=name):
        TrainConfig(**{name: outside})


def test_readme_states_the_schema_defaults():
    text = (ROOT / "config" / "README.md").read_text()
    rows = dict(re.findall(r"^\| `train\.(\w+)` \| ([^|]+) \|", text, flags=re.M))
    assert set(rows) == set(DEFAULTS)
    for key, default in DEFAULTS.items():
        stated = rows[key].strip().strip("`")
        if isinstance(default, list) and len(set(default)) == 1:
            assert stated == f"[{default[0]}]*{len(default)}", key
        elif isinstance(default, bool):
            assert stated == str(default).lower(), key
        else:
            assert yaml.safe_load(stated) == default, key


def test_trainconfig_refuses_unknown_choices():
    with pytest.raises(ValueError, match="unknown activation 'Tanh'"):
        TrainConfig(activation="Tanh")
    with pytest.raises(ValueError, match="unknown method"):
        TrainConfig(method="snpe")


def test_the_adaptive_grid_s_schema_defaults_bounds_and_cli_defaults_are_the_package_s():
    from bnre.adaptive import Refinement
    from bnre.cli import grid_spec, parser

    evaluate = SCHEMA["properties"]["evaluate"]["properties"]
    default = Refinement()
    keys = {"coarse_bins": "coarse_bins", "refine_cells": "cells", "refine_depth": "depth", "refine_tolerance": "tolerance"}
    for key, field in keys.items():
        assert evaluate[key]["default"] == getattr(default, field)
    assert evaluate["grid"]["default"] == "adaptive"
    args = parser().parse_args(["evaluate", "--model", "m", "--test", "t", "--pairs", "1", "--metrics", "a",
                                "--coverage", "b", "--ranks", "c", "--calibration", "d"])
    assert args.grid == "adaptive" and grid_spec(args, 2) == default
    for key, field in keys.items():  # the help states the default
        action = next(a for a in parser()._subparsers._group_actions[0].choices["evaluate"]._actions if a.dest == key)
        stated = [default.budget(1), default.budget(3)] if field == "cells" else [getattr(default, field)]
        assert all(f"{value:g}" in action.help for value in stated) and "default" in action.help
    assert args.bins == evaluate["bins"]["default"] and args.max_cells == evaluate["max_cells"]["default"]
    # the schema's bounds are the package's
    assert evaluate["refine_depth"]["minimum"] == 1 and evaluate["refine_depth"]["maximum"] == 30
    for bad in (dict(depth=0), dict(depth=31), dict(tolerance=0.0), dict(tolerance=1.0), dict(coarse_bins=1)):
        with pytest.raises(ValueError):
            Refinement(**bad)
    Refinement(depth=1, tolerance=1e-12, coarse_bins=2, cells=4)
