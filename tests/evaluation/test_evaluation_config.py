"""One source of truth for the evaluation options: the package's EvaluationConfig and the
workflow's JSON schema state the same options, defaults, bounds and choices, and the
commands take them as one JSON object."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from bnre.evaluation.adaptive import Refinement, default_cells
from bnre.evaluation.config import CHOICES, EvaluationConfig
from bnre.evaluation.grids import UniformGrid
from bnre.evaluation.precision import GridPrecision
from bnre.workflow import jobs

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())["properties"]["evaluate"]["properties"]


def test_the_schema_states_the_package_s_options_and_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(EvaluationConfig)}
    assert set(SCHEMA) == set(fields)
    assert {key: spec["default"] for key, spec in SCHEMA.items()} == fields
    for key, choices in CHOICES.items():
        assert set(SCHEMA[key]["enum"]) == set(choices) and choices[0] == fields[key], key


def test_the_schema_s_bounds_are_the_package_s():
    for key, spec in SCHEMA.items():
        if "minimum" in spec:  # the bound is accepted, one below it is refused
            bound = spec["minimum"]
            extra = {"coarse_bins": 2} if key == "refine_cells" else {}
            EvaluationConfig(**{key: bound, **extra})
            with pytest.raises(ValueError, match=key):
                EvaluationConfig(**{key: bound - 1, **extra})
        if "maximum" in spec:
            EvaluationConfig(**{key: spec["maximum"]})
            with pytest.raises(ValueError, match=key):
                EvaluationConfig(**{key: spec["maximum"] + 1})
        for bound in (spec.get("exclusiveMinimum"), spec.get("exclusiveMaximum")):
            if bound is not None:
                with pytest.raises(ValueError, match=key):
                    EvaluationConfig(**{key: bound})


def test_the_defaults_are_the_grids_defaults():
    default = EvaluationConfig()
    assert default.grid_spec(2) == Refinement() and default.grid_precision() == GridPrecision()
    assert Refinement().budget(2) == default_cells(2) == 90**2 and Refinement().budget(3) == 32**3
    uniform = EvaluationConfig(grid="uniform")
    assert uniform.grid_spec(2) == UniformGrid(90) and uniform.grid_spec(3) == UniformGrid(32)
    assert EvaluationConfig(refine_cells=2048, refine_depth=5).grid_spec(1) == Refinement(16, 2048, 5, 1e-4)


def test_bad_options_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown evaluation option\(s\) \['bin'\]"):
        EvaluationConfig.from_json('{"bin": 10}')
    with pytest.raises(ValueError, match="not valid JSON"):
        EvaluationConfig.from_json("{bins: 10}")
    with pytest.raises(ValueError, match="must be a JSON object"):
        EvaluationConfig.from_json("[1]")
    with pytest.raises(ValueError, match="grid must be one of"):
        EvaluationConfig.from_json('{"grid": "sparse"}')
    with pytest.raises(ValueError, match=r"refine_cells \(20\) must be at least 2 \* coarse_bins \(32\)"):
        EvaluationConfig(refine_cells=20)


@pytest.mark.parametrize("grid", ["adaptive", "uniform"])
def test_each_command_gets_the_options_it_reads(grid):
    config = {"evaluate": {key: spec["default"] for key, spec in SCHEMA.items()} | {"grid": grid, "bins": 33, "pairs": 7}}
    given = {command: json.loads(jobs.evaluation_options(config, command)) for command in jobs.COMMAND_OPTIONS}
    grid_keys = {"grid", *jobs.GRID_OPTIONS[grid]}
    assert set(given["posterior-figure"]) == set(given["infer"]) == grid_keys
    assert set(given["evaluate-exact"]) == grid_keys | {"pairs"}
    precision = {"precision", "precision_delta", "precision_tolerance"} if grid == "uniform" else set()
    assert set(given["evaluate"]) == grid_keys | {"pairs", "coverage_method", "mc_samples"} | precision
    for command, options in given.items():  # what the command reads equals the config's
        read = EvaluationConfig.from_dict(options)
        assert {key: getattr(read, key) for key in options} == {key: config["evaluate"][key] for key in options}
