"""The rules' conda environments (envs/*.yaml) against the code they run and pyproject.toml.

No conda channel is reachable in CI, so the environments are not created here; instead
every file is parsed with rattler (the conda package manager library behind pixi and
mamba's solver), every rule's `python -m bnre <command>` is traced through the package by
static analysis (bnre.workflow.sourcegraph) to the third-party packages it imports, and each of
those must be pinned in the rule's environment at a version pyproject.toml allows.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from rattler import Channel, MatchSpec, Version, VersionSpec

from bnre.workflow import sourcegraph

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# import name -> conda-forge packages that provide it
IMPORT_TO_CONDA = {
    "torch": {"pytorch"},
    "yaml": {"pyyaml"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
    "seaborn": {"seaborn", "seaborn-base"},
    "sklearn": {"scikit-learn"},
    "PIL": {"pillow"},
}
# conda-forge package -> PyPI distribution
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "seaborn-base": "seaborn"}
# import name -> PyPI distribution
IMPORT_TO_PYPI = {"yaml": "pyyaml", "sklearn": "scikit-learn", "PIL": "pillow"}
GPU_RULES = {"train", "evaluate", "evaluate_exact"}


def parse_env(path: Path) -> dict[str, MatchSpec]:
    """Package name -> MatchSpec of an environment file; refuses what conda would not read."""
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and set(env) <= {"name", "channels", "dependencies"}, f"{path.name}: keys {env}"
    for channel in env.get("channels", []):
        if channel != "nodefaults":  # conda's keyword for "no default channels"
            Channel(channel)
    specs = {}
    for dependency in env["dependencies"]:
        assert isinstance(dependency, str), f"{path.name}: {dependency!r} (no pip section: conda only)"
        spec = MatchSpec(dependency, strict=True)
        name = spec.name.normalized
        assert name not in specs, f"{path.name}: {name} listed twice"
        specs[name] = spec
    return specs


def rules() -> dict[str, dict]:
    """Rule name -> its conda environment file, bnre command and declared code commands."""
    found = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule \w+:)", path.read_text())[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            conda = re.search(r'^    conda:\n\s+"([^"]+)"', block, re.M)
            if re.search(r"^    conda:\n\s+simulate_env$", block, re.M):  # a task's own env, else this
                conda = re.match(r"(.*)", "../envs/simulate.yaml")
            command = re.search(r'"python -m bnre(?: --threads \{threads\})? ([\w-]+)', block)
            code = re.search(r"code=package_code\(([^)]*)\)", block)
            found[name] = {
                "env": (path.parent / conda.group(1)).resolve() if conda else None,
                "command": command.group(1) if command else None,
                "code": re.findall(r'"([\w-]+)"', code.group(1)) if code else [],
            }
    return found


RULES = rules()
GRAPH = sourcegraph.build_graph(ROOT / "src" / "bnre")


def imports_of(command: str) -> set[str]:
    return GRAPH.third_party(GRAPH.command_modules(command), command)


def pin(spec: MatchSpec) -> str:
    """The version an `X.Y` / `X.Y.*` / `==X.Y.Z` pin names."""
    assert spec.version is not None, f"{spec} is not pinned to a version"
    match = re.fullmatch(r"(?:==)?(\d+(?:\.\d+)*)(?:\.\*)?", str(spec.version))
    assert match, f"{spec}: pin one version (X.Y or X.Y.Z), not {spec.version}"
    return match.group(1)


def pyproject_requirements() -> dict[str, SpecifierSet]:
    return {Requirement(r).name.lower(): Requirement(r).specifier for r in PYPROJECT["dependencies"]}


def test_rules_are_found():
    assert {"simulate_block", "merge_blocks", "train", "evaluate", "aggregate_summary", "figures"} <= set(RULES)


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_file_is_a_valid_pinned_conda_spec(path):
    specs = parse_env(path)
    assert "python" in specs
    for spec in specs.values():
        pin(spec)
        assert VersionSpec(str(spec.version)).matches(Version(pin(spec)))


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_env_pins_every_package_its_command_imports(rule):
    info = RULES[rule]
    if info["command"] is None:
        pytest.skip(f"rule {rule} runs no command")
    assert info["env"] is not None and info["env"].exists(), f"rule {rule} has no conda environment"
    assert info["command"] in GRAPH.commands(), f"rule {rule}: unknown command {info['command']}"
    assert info["command"] in info["code"], f"rule {rule} must declare package_code({info['command']!r}, ...)"
    specs = parse_env(info["env"])
    imported = imports_of(info["command"])
    assert imported, f"{info['command']} imports nothing?"
    missing = {name for name in imported if not (IMPORT_TO_CONDA.get(name, {name}) & set(specs))}
    assert not missing, f"rule {rule} ({info['env'].name}) lacks {sorted(missing)}, imported by `bnre {info['command']}`"


def test_gpu_rules_get_cuda_builds_of_pytorch_and_simulation_a_cpu_build():
    for rule, info in RULES.items():
        specs = parse_env(info["env"]) if info["env"] else {}
        if "pytorch" not in specs:
            continue
        build = specs["pytorch"].build
        if rule in GPU_RULES:
            assert build == "cuda*", f"rule {rule}: {specs['pytorch']} is not a CUDA build"
        else:
            assert build == "cpu*", f"rule {rule}: {specs['pytorch']} should be a CPU build"
    assert all("pytorch" in parse_env(RULES[r]["env"]) for r in GPU_RULES)


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_versions_are_within_pyproject_ranges(path):
    requirements = pyproject_requirements()
    checked = 0
    for name, spec in parse_env(path).items():
        version = pin(spec)
        probes = [version, f"{version}.0", f"{version}.99"] if version.count(".") < 2 else [version]
        if name == "python":
            allowed, what = SpecifierSet(PYPROJECT["requires-python"]), "requires-python"
        elif CONDA_TO_PYPI.get(name, name) in requirements:
            allowed, what = requirements[CONDA_TO_PYPI.get(name, name)], CONDA_TO_PYPI.get(name, name)
        else:
            continue
        for probe in probes:
            assert VersionSpec(str(spec.version)).matches(Version(probe))
            assert allowed.contains(probe), f"{path.name}: {spec} allows {probe}, outside pyproject's {what}{allowed}"
        checked += 1
    assert checked >= 2


def test_pyproject_lists_every_package_the_package_imports():
    requirements = pyproject_requirements()
    imported = set().union(*(imports_of(c) for c in GRAPH.commands()))
    missing = {name for name in imported if IMPORT_TO_PYPI.get(name, name).lower() not in requirements}
    assert not missing, f"pyproject.toml dependencies lack {sorted(missing)}"


def test_gravitational_wave_env_is_the_simulate_env_plus_the_gw_extra():
    from bnre.registry.tasks import TASKS

    from bnre.workflow.settings import OPTIONAL_TASKS

    # the workflow gives a task that needs an extra the environment envs/simulate_<task>.yaml
    assert OPTIONAL_TASKS["gravitational_waves"]["env"] == "../envs/simulate_gravitational_waves.yaml"
    assert "conda:\n        simulate_env" in (ROOT / "rules" / "simulate.smk").read_text()
    assert {name for name, task in TASKS.items() if task.needs} == {"gravitational_waves"}
    assert TASKS["gravitational_waves"].needs == ("lalsimulation", "gw")
    gw, plain = parse_env(ROOT / "envs" / "simulate_gravitational_waves.yaml"), parse_env(ROOT / "envs" / "simulate.yaml")
    assert set(gw) - set(plain) == {"lalsuite"} and all(str(gw[n]) == str(plain[n]) for n in plain)
    extra = {Requirement(r).name: Requirement(r).specifier for r in PYPROJECT["optional-dependencies"]["gw"]}
    assert extra["lalsuite"].contains(pin(gw["lalsuite"]) + ".0")
    # the simulator imports lal only inside an ImportError guard: no other stage needs it
    assert not {"lal", "lalsimulation"} & ALL_IMPORTS


def test_static_analysis_finds_the_task_modules_and_the_light_stages():
    tasks = GRAPH.task_modules()
    assert tasks["slcp"] == {"bnre.tasks.slcp"}
    simulate_slcp = GRAPH.command_modules("simulate", "slcp")
    assert "bnre.tasks.slcp" in simulate_slcp and "bnre.tasks.gaussian" not in simulate_slcp
    assert {"bnre.tasks.slcp", "bnre.tasks.gaussian"} <= GRAPH.command_modules("simulate")
    assert imports_of("aggregate") == {"pandas"}
    assert "torch" not in imports_of("figures") and "h5py" not in imports_of("figures")


ALL_IMPORTS = set().union(*(imports_of(c) for c in GRAPH.commands()))


def stage_arguments(rule: str, workdir: Path, tmp: Path) -> list:
    """Arguments of a small real run of the rule's command, on the tiny workflow's files."""
    data, results = workdir / "data" / "gaussian" / "seed3", workdir / "results"  # tiny.yaml: seed 3
    return {
        "simulate_block": ["simulate", "--task", "slcp", "--split", "val", "--seed", 1, "--start", 64, "--stop", 128,
                           "--output", tmp / "block1.h5"],
        "merge_blocks": ["merge", "--output", tmp / "merged.h5", tmp / "block0.h5", tmp / "block1.h5"],
        "train": ["train", "--task", "gaussian", "--method", "bnre", "--budget", 64, "--train", data / "train.h5",
                  "--val", data / "val.h5", "--options", '{"replicates": 1, "epochs": 1, "hidden": [8]}',
                  "--model", tmp / "model.pt", "--history", tmp / "history.csv"],
        "evaluate": ["evaluate", "--model", sorted(workdir.glob("models/gaussian/seed3/*/*.pt"))[0], "--test", data / "test.h5",
                     "--options", '{"grid": "uniform", "bins": 10, "pairs": 20}', "--metrics", tmp / "metrics.csv", "--coverage", tmp / "coverage.csv",
                     "--ranks", tmp / "ranks.csv", "--calibration", tmp / "calibration.csv"],
        "evaluate_exact": ["evaluate-exact", "--task", "gaussian", "--test", data / "test.h5",
                           "--options", '{"grid": "uniform", "bins": 10, "pairs": 20}',
                           "--budgets", 64, 128, "--metrics", tmp / "metrics.csv", "--coverage", tmp / "coverage.csv",
                           "--ranks", tmp / "ranks.csv", "--calibration", tmp / "calibration.csv"],
        "aggregate_summary": ["aggregate", "--output", tmp / "summary.csv", *sorted(results.glob("*/*/*/*/metrics.csv"))],
        "aggregate_coverage": ["aggregate", "--output", tmp / "coverage.csv", *sorted(results.glob("*/*/*/*/coverage.csv"))],
        "aggregate_calibration": ["aggregate", "--output", tmp / "calibration.csv",
                                  *sorted(results.glob("*/*/*/*/calibration.csv"))],
        "figures": ["figures", "--summary", results / "summary.csv", "--coverage", results / "coverage.csv",
                    "--calibration", results / "calibration.csv", "--outdir", tmp / "figures", "--formats", "png"],
        "training_figures": ["training-figures", "--outdir", tmp / "figures",
                             *sorted(workdir.glob("models/*/*/*/*.history.csv")), "--formats", "png"],
        "infer": ["infer", "--model", *sorted(workdir.glob("models/gaussian/seed3/*/512.pt")), "--observation", data / "test.h5",
                  "--samples", 10, "--seed", 0, "--options", '{"grid": "uniform", "bins": 10}', "--samples-output", tmp / "samples.csv",
                  "--intervals-output", tmp / "intervals.csv", "--figure", tmp / "corner", "--formats", "png"],
        "posterior_figure": ["posterior-figure", "--test", data / "test.h5", "--pair", 0,
                             "--options", '{"grid": "uniform", "bins": 10}', "--output",
                             tmp / "figures" / "posterior", *sorted(workdir.glob("models/gaussian/seed3/*/*.pt")),
                             "--formats", "png"],
    }[rule]


def run_without(blocked: set[str], argv: list, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m bnre <argv>` with the top-level modules `blocked` made unimportable."""
    code = (
        "import runpy, sys\n"
        "class Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {sorted(blocked)!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not in this environment)', name=name)\n"
        "sys.meta_path.insert(0, Blocked())\n"
        f"sys.argv = ['bnre', *{[str(a) for a in argv]!r}]\n"
        "runpy.run_module('bnre', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("rule", sorted(r for r in RULES if RULES[r]["command"]))
def test_rule_command_runs_with_only_its_env_packages(rule, tiny_workflow, tmp_path):
    # The static analysis, checked at run time: the rule's command, run for real, never
    # needs a package of the project that its environment lacks (for aggregation and
    # figures: torch and h5py).
    specs = parse_env(RULES[rule]["env"])
    blocked = {name for name in ALL_IMPORTS if not (IMPORT_TO_CONDA.get(name, {name}) & set(specs))}
    if rule == "merge_blocks":
        for start, name in ((0, "block0.h5"), (64, "block1.h5")):
            argv = stage_arguments("simulate_block", tiny_workflow, tmp_path)
            argv[argv.index("--start") + 1], argv[argv.index("--stop") + 1] = start, start + 64
            argv[argv.index("--output") + 1] = tmp_path / name
            assert run_without(set(), argv, tmp_path).returncode == 0
    result = run_without(blocked, stage_arguments(rule, tiny_workflow, tmp_path), tmp_path)
    assert result.returncode == 0, f"`bnre {RULES[rule]['command']}` without {sorted(blocked)}:\n{result.stderr[-3000:]}"
    assert any(p.is_file() and p.stat().st_size > 0 for p in tmp_path.rglob("*") if p.suffix in (".h5", ".pt", ".csv", ".png"))
