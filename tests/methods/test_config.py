"""One source of truth for the training options: the package's TrainConfig, the workflow's
JSON schema and config/README.md state the same options, defaults, bounds and choices."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from bnre.methods.config import CHOICES, EXECUTION_OPTIONS, TrainConfig
from bnre.nets.estimators import ACTIVATIONS
from bnre.registry import methods as method_registry
from bnre.registry.methods import DCP_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
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
    assert [fields["seed"]] == SCHEMA["properties"]["seeds"]["default"]  # the default study: one seed, TrainConfig's
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
    method = {"method": "calnre"} if key in DCP_OPTIONS else {}  # only the calibrated methods take those
    TrainConfig(**method, **{name: type(DEFAULTS[key])(inside) if kind == "integer" else inside})
    with pytest.raises(ValueError, match=name):
        TrainConfig(**method, **{name: outside})


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
