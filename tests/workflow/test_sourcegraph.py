"""bnre.workflow.sourcegraph: the static import graph behind the workflow's code-aware re-runs.

A small package written into a temporary directory, whose import graph is known by
construction, is analysed; the expected module sets below are worked out by hand from the
files. A code hash must change exactly when a module that the command runs (for that
task) changes. Finally, the real package is run for real and every module it loads must
be in the static analysis's set (else a change to it would not re-run the job).
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bnre.workflow import sourcegraph

ROOT = Path(__file__).resolve().parents[2]

# The fake package (named bnre, as the analysis expects). What each file imports:
#   __main__        -> cli
#   cli             module level: util (+ argparse, json: stdlib; fancy_optional: guarded)
#                   helper: helpers.shared (``from .helpers import shared``: a submodule)
#                   cmd_simulate -> simulate, helper;  cmd_train -> train (+ torch)
#                   cmd_report -> report (+ pandas);   parser refers to every cmd_*
#   util            numpy, os.path (stdlib)
#   helpers.shared  ..util (relative, level 2)
#   simulate        .tasks (the registry, which imports every task)
#   tasks/__init__  .base, .alpha, .beta, .gamma
#   tasks.base      numpy
#   tasks.alpha     task "alpha": .base, ..nets
#   tasks.beta      task "beta":  .alpha (another task's module!), scipy
#   tasks.gamma     task "gamma": ``from .. import util``; h5py guarded by except ImportError
#   nets            torch
#   train           ``from . import nets``, ``from .tasks.base import Task`` (runs tasks/__init__)
#   report          ``import bnre.tables.fmt``, ``import bnre.no_such_module`` (-> bnre), yaml
#   tables/fmt      nothing;  unused: nets (reached by nothing)
FILES = {
    "__init__.py": '__version__ = "0"\n',
    "__main__.py": "from .cli import main\n\nmain()\n",
    "cli.py": '''
        from __future__ import annotations

        import argparse
        import json

        from . import util

        try:
            import fancy_optional
        except ImportError:
            fancy_optional = None


        def helper():
            from .helpers import shared
            return shared


        def cmd_simulate(args):
            from .simulate import run
            helper()
            run()


        def cmd_train(args):
            import torch
            import bnre.train


        def cmd_report(args):
            import pandas as pd
            from bnre.report import table


        def parser():
            p = argparse.ArgumentParser()
            sub = p.add_subparsers()
            sub.add_parser("simulate").set_defaults(run=cmd_simulate)
            sub.add_parser("train").set_defaults(run=cmd_train)
            sub.add_parser("report").set_defaults(run=cmd_report)
            return p


        def main(argv=None):
            args = parser().parse_args(argv)
            args.run(args)
    ''',
    "util.py": "import os.path\n\nimport numpy\n\nVALUE = 1\n",
    "helpers/__init__.py": "",
    "helpers/shared.py": "from ..util import VALUE\n",
    "simulate.py": "from .tasks import get_task\n\n\ndef run():\n    return get_task\n",
    "tasks/__init__.py": (
        "from .alpha import Alpha\nfrom .base import Task\nfrom .beta import Beta\nfrom .gamma import Gamma\n"
    ),
    "tasks/base.py": "import numpy as np\n\n\nclass Task:\n    pass\n",
    "tasks/alpha.py": 'from ..nets import Net\nfrom .base import Task\n\n\nclass Alpha(Task):\n    name = "alpha"\n',
    "tasks/beta.py": (
        'import scipy\n\nfrom .alpha import Alpha\n\n\nclass Beta(Alpha):\n    name: str = "beta"\n'
    ),
    "tasks/gamma.py": '''
        from .. import util
        from .base import Task

        try:
            import h5py
        except ImportError:
            h5py = None


        class Gamma(Task):
            name = "gamma"
    ''',
    "nets.py": "import torch\n\n\nclass Net:\n    pass\n",
    "train.py": "from . import nets\nfrom .tasks.base import Task\n",
    "report.py": "import bnre.no_such_module\nimport bnre.tables.fmt\nimport yaml\n\n\ndef table():\n    pass\n",
    "tables/__init__.py": "",
    "tables/fmt.py": "WIDTH = 8\n",
    "unused.py": "from . import nets\n",
}

ENTRY = {"bnre", "bnre.__main__", "bnre.cli", "bnre.util"}
TASK_REGISTRY = {"bnre.tasks", "bnre.tasks.base"}
TASK_MODULES = {"bnre.tasks.alpha", "bnre.tasks.beta", "bnre.tasks.gamma"}
EXPECTED = {
    # command -> modules it runs for every task
    "simulate": (
        ENTRY | {"bnre.helpers", "bnre.helpers.shared", "bnre.simulate", "bnre.nets"} | TASK_REGISTRY | TASK_MODULES
    ),
    "train": ENTRY | {"bnre.train", "bnre.nets"} | TASK_REGISTRY | TASK_MODULES,
    "report": ENTRY | {"bnre.report", "bnre.tables", "bnre.tables.fmt"},
}
# task -> the other tasks' modules its jobs do not depend on (beta imports alpha's module;
# nets is reached through alpha's module only, in simulate)
NOT_FOR_TASK = {"alpha": {"bnre.tasks.beta", "bnre.tasks.gamma"}, "beta": {"bnre.tasks.gamma"},
                "gamma": {"bnre.tasks.alpha", "bnre.tasks.beta"}}


def write_package(root: Path) -> Path:
    package = root / "bnre"
    for name, text in FILES.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return package


@pytest.fixture
def package(tmp_path):
    return write_package(tmp_path)


def test_module_names_and_packages(package):
    graph = sourcegraph.build_graph(package)
    assert set(graph.modules) == {"bnre." + n.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
                                  for n in FILES} - {"bnre.__init__"} | {"bnre"}
    packages = {n for n, m in graph.modules.items() if m.is_package}
    assert packages == {"bnre", "bnre.helpers", "bnre.tasks", "bnre.tables"}


def test_commands_are_the_cmd_functions(package):
    assert sourcegraph.build_graph(package).commands() == ["report", "simulate", "train"]


def test_task_modules_are_the_classes_with_a_literal_name(package):
    assert sourcegraph.build_graph(package).task_modules() == {
        "alpha": {"bnre.tasks.alpha"}, "beta": {"bnre.tasks.beta"}, "gamma": {"bnre.tasks.gamma"}}


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_command_modules_follow_direct_relative_submodule_and_transitive_imports(package, command):
    graph = sourcegraph.build_graph(package)
    assert graph.command_modules(command) == EXPECTED[command]


@pytest.mark.parametrize("task", sorted(NOT_FOR_TASK))
def test_a_task_job_leaves_out_only_the_other_tasks_modules(package, task):
    graph = sourcegraph.build_graph(package)
    expected_simulate = EXPECTED["simulate"] - NOT_FOR_TASK[task]
    if task == "gamma":
        expected_simulate -= {"bnre.nets"}  # only alpha's module imports nets in simulate
    assert graph.command_modules("simulate", task) == expected_simulate
    assert graph.command_modules("train", task) == EXPECTED["train"] - NOT_FOR_TASK[task]  # train imports nets itself
    assert graph.command_modules("report", task) == EXPECTED["report"]


def test_third_party_imports_skip_stdlib_the_package_and_guarded_imports(package):
    graph = sourcegraph.build_graph(package)
    imports = {c: graph.third_party(graph.command_modules(c), c) for c in EXPECTED}
    # the CLI's torch (cmd_train) and pandas (cmd_report) count only for their own command;
    # fancy_optional and h5py are optional; argparse, json, os, __future__ are stdlib
    assert imports == {"simulate": {"numpy", "scipy", "torch"}, "train": {"numpy", "scipy", "torch"},
                       "report": {"numpy", "yaml", "pandas"}}
    assert graph.third_party(graph.command_modules("simulate", "gamma"), "simulate") == {"numpy"}


def test_unknown_command_is_refused(package):
    with pytest.raises(ValueError, match="unknown command"):
        sourcegraph.build_graph(package).command_modules("fit")


CASES = [(c, t) for c in sorted(EXPECTED) for t in (None, "alpha", "beta", "gamma")]


def hashes(package: Path) -> dict:
    """code_hash of every (command, task), from a freshly built graph each time."""
    sourcegraph._cached_graph.cache_clear()
    return {(c, t): sourcegraph.code_hash([c], t, package) for c, t in CASES}


@pytest.mark.parametrize(
    "changed",
    ["tasks/gamma.py", "nets.py", "helpers/shared.py", "tables/fmt.py", "cli.py", "unused.py", "tasks/base.py"],
)
def test_a_change_to_one_module_changes_exactly_the_hashes_of_the_jobs_that_run_it(package, changed):
    before = hashes(package)
    assert hashes(package) == before  # stable for unchanged code
    assert len(set(before.values())) > 1
    path = package / changed
    path.write_text(path.read_text() + "\n_edited = 1\n")
    after = hashes(package)
    module = "bnre." + changed.removesuffix(".py").replace("/", ".")
    for command, task in CASES:
        runs = module in sourcegraph.build_graph(package).command_modules(command, task)
        assert (after[command, task] != before[command, task]) == runs, (command, task, module)
    if changed == "unused.py":
        assert after == before


def test_comments_docstrings_and_layout_change_no_hash(package):
    before = hashes(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        path.write_text('"""A docstring added."""\n# a comment\n\n\n' + text.replace("\n\n", "\n\n\n") + "\n# the end\n")
    cli = package / "cli.py"
    cli.write_text(cli.read_text().replace("def helper():", 'def helper():\n    """What it does."""  # and why'))
    assert hashes(package) == before


@pytest.mark.parametrize("function, commands", [("cmd_train", {"train"}), ("helper", {"simulate"}), ("parser", None)])
def test_an_edit_to_the_cli_changes_the_hashes_of_the_commands_that_run_that_part(package, function, commands):
    before = hashes(package)
    cli = package / "cli.py"
    cli.write_text(cli.read_text().replace(f"def {function}(", f"def {function}(*_edited, ", 1).replace(", )", ")"))
    after = hashes(package)
    changed = {command for (command, _), value in after.items() if value != before[command, _]}
    assert changed == (commands or set(EXPECTED))


def test_hash_covers_the_set_of_modules_not_only_their_text(package):
    # the same bytes in one more module (or under another name) are another code version
    base = sourcegraph.build_graph(package)
    modules = base.command_modules("report")
    assert base.digest(modules) != base.digest(modules | {"bnre.unused"})
    assert base.digest(modules) == base.digest(sorted(modules, reverse=True))  # order-free


def test_a_new_import_enters_the_hash(package):
    before = sourcegraph.build_graph(package).command_modules("report")
    (package / "tables" / "fmt.py").write_text("from .. import nets\n")
    graph = sourcegraph.build_graph(package)
    assert graph.command_modules("report") == before | {"bnre.nets"}
    assert graph.third_party(graph.command_modules("report"), "report") == {"numpy", "yaml", "pandas", "torch"}


def test_real_simulate_command_loads_only_modules_the_analysis_counts(tmp_path):
    # ground truth: run `python -m bnre simulate` for slcp and record every bnre module
    # loaded. Other tasks' modules, and what only they import (e.g. bnre.nets.embeddings), are
    # loaded too (the task registry imports them all) and are left out of the slcp job's
    # set by design; every other loaded module must be in it.
    code = textwrap.dedent(f"""
        import atexit, runpy, sys
        atexit.register(lambda: print("MODULES=" + ",".join(sorted(
            m for m in sys.modules if m == "bnre" or m.startswith("bnre.")))))
        sys.argv = ["bnre", "simulate", "--task", "slcp", "--split", "val", "--seed", "1",
                    "--start", "0", "--stop", "8", "--output", {str(tmp_path / "block.h5")!r}]
        runpy.run_module("bnre", run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(result.stdout.rsplit("MODULES=", 1)[1].strip().split(","))
    assert {"bnre.cli", "bnre.tasks.slcp", "bnre.simulation.simulate"} <= loaded
    graph = sourcegraph.build_graph(ROOT / "src" / "bnre")
    assert loaded <= graph.command_modules("simulate")
    other_tasks = set().union(*(m for t, m in graph.task_modules().items() if t != "slcp"))
    slcp = graph.command_modules("simulate", "slcp")
    # reached at run time only through another task's module, never through slcp's own
    assert loaded - slcp <= graph.closure(other_tasks, exclude=slcp)
    assert not (loaded - slcp) & {"bnre.tasks.slcp", "bnre.tasks.base", "bnre.simulation.simulate", "bnre.simulation.pairs"}


# A plugin task (bnre.tasks.plugins): simulation code, network code, code both use.
PLUGIN = '''
import numpy as np
from torch import nn
from sim_helpers import OFFSET


def noise(theta, rng):
    return 0.1 * rng.standard_normal(theta.shape)


def summary_network(n):
    return nn.Linear(n, 4)


class Mine:
    """My task."""

    name = "mine"

    def simulate(self, theta, rng):
        return theta + OFFSET + noise(theta, rng)

    def embedding(self):
        return summary_network(2)  # the network

    def embedding_features(self):
        return 4


class Other:
    def simulate(self, theta, rng):
        return theta
'''

PLUGIN_EDITS = {
    "a comment": ("# the network", "# a summary network"),
    "a docstring": ("My task.", "My own task."),
    "the embedding": ("nn.Linear(n, 4)", "nn.Linear(n, 8)"),
    "embedding_features": ("return 4", "return 8"),
    "the simulator": ("theta + OFFSET", "theta - OFFSET"),
    "a helper the simulator uses": ("0.1 *", "0.2 *"),
    "another class": ("return theta\n", "return -theta\n"),
}
#: (simulation hash changes, training hash changes) for each edit
PLUGIN_RERUNS = {
    "a comment": (False, False),
    "a docstring": (False, False),
    "the embedding": (False, True),
    "embedding_features": (False, True),
    "the simulator": (True, True),
    "a helper the simulator uses": (True, True),
    "another class": (True, True),
}


@pytest.mark.parametrize("edit", PLUGIN_EDITS)
def test_a_plugin_hash_follows_what_each_stage_runs(tmp_path, edit):
    """Editing only the embedding re-trains without re-simulating; comments and docstrings count for neither."""
    (tmp_path / "sim_helpers.py").write_text("OFFSET = 1.0\n")
    file = tmp_path / "mine.py"
    file.write_text(PLUGIN)

    def hashes():
        return (
            sourcegraph.plugin_code_hash(file, "Mine", ["simulate", "merge"]),
            sourcegraph.plugin_code_hash(file, "Mine", ["train"]),
        )

    before = hashes()
    old, new = PLUGIN_EDITS[edit]
    assert PLUGIN.count(old) == 1
    file.write_text(PLUGIN.replace(old, new))
    after = hashes()
    assert (before[0] != after[0], before[1] != after[1]) == PLUGIN_RERUNS[edit]


def test_a_plugin_hash_covers_its_sibling_modules(tmp_path):
    helpers = tmp_path / "sim_helpers.py"
    helpers.write_text("OFFSET = 1.0\n")
    file = tmp_path / "mine.py"
    file.write_text(PLUGIN)
    before = sourcegraph.plugin_code_hash(file, "Mine", ["simulate"])
    helpers.write_text("OFFSET = 2.0\n")
    assert sourcegraph.plugin_code_hash(file, "Mine", ["simulate"]) != before
