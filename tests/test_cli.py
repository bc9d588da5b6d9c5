"""The package's command line: each stage by hand, and clear errors on bad input."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def bnre(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "bnre", *map(str, args)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_stages_by_hand(tmp_path):
    for split, n in (("train", 600), ("val", 200), ("test", 50)):
        bnre("simulate", "--task", "gaussian", "--split", split, "--seed", 1, "--start", 0, "--stop", n, "--output", tmp_path / f"{split}.h5")
    bnre(
        "train", "--task", "gaussian", "--method", "nre", "--budget", 512, "--train", tmp_path / "train.h5",
        "--val", tmp_path / "val.h5", "--options", '{"replicates": 1, "epochs": 2, "hidden": [8]}',
        "--model", tmp_path / "m.pt", "--history", tmp_path / "h.csv",
    )
    bnre(
        "evaluate", "--model", tmp_path / "m.pt", "--test", tmp_path / "test.h5", "--options", '{"grid": "uniform", "bins": 10, "pairs": 50}',
        "--metrics", tmp_path / "metrics.csv", "--coverage", tmp_path / "c.csv", "--ranks", tmp_path / "r.csv",
        "--calibration", tmp_path / "cal.csv",
    )
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert set(metrics.method) == {"nre"} and set(metrics.budget) == {512}
    calibration = pd.read_csv(tmp_path / "cal.csv")
    assert set(calibration.diagnostic) == {"sbc", "marginal_hpd", "tarp"} and set(calibration.budget) == {512}
    bnre(
        "evaluate-exact", "--task", "gaussian", "--test", tmp_path / "test.h5", "--options", '{"grid": "uniform", "bins": 10, "pairs": 50}',
        "--budgets", 256, 512, "--metrics", tmp_path / "em.csv", "--coverage", tmp_path / "ec.csv",
        "--ranks", tmp_path / "er.csv", "--calibration", tmp_path / "ecal.csv",
    )
    exact = pd.read_csv(tmp_path / "em.csv")
    assert set(exact.method) == {"exact"} and set(exact.budget) == {256, 512}
    assert exact.groupby("metric").value.nunique().eq(1).all()  # the same rows at each budget
    for name, grid in (("uniform", '{"grid": "uniform", "bins": 20}'), ("adaptive", '{"refine_cells": 2048}')):
        figure = tmp_path / f"posterior_{name}"
        bnre("posterior-figure", "--test", tmp_path / "test.h5", "--pair", 3, "--options", grid, "--output", figure,
             tmp_path / "m.pt", "--formats", "png")
        assert Path(f"{figure}.png").stat().st_size > 1000

    # bad input: one clear message, exit status 2, no output written
    result = bnre(
        "train", "--task", "slcp", "--method", "nre", "--budget", 512, "--train", tmp_path / "train.h5",
        "--val", tmp_path / "val.h5", "--model", tmp_path / "x.pt", "--history", tmp_path / "x.csv", check=False,
    )
    assert result.returncode == 2
    assert "holds task 'gaussian', expected 'slcp'" in result.stderr
    result = bnre(
        "evaluate", "--model", tmp_path / "m.pt", "--test", tmp_path / "test.h5", "--options", '{"grid": "uniform", "bins": 10, "pairs": 51}',
        "--metrics", tmp_path / "x.csv", "--coverage", tmp_path / "y.csv", "--ranks", tmp_path / "z.csv",
        "--calibration", tmp_path / "w.csv", check=False,
    )
    assert result.returncode == 2 and "51 coverage pairs requested but" in result.stderr
    result = bnre(
        "train", "--task", "gaussian", "--method", "bnre", "--budget", 512, "--train", tmp_path / "train.h5",
        "--val", tmp_path / "val.h5", "--options", '{"lamda": 3}', "--model", tmp_path / "x.pt",
        "--history", tmp_path / "x.csv", check=False,
    )
    assert result.returncode == 2 and "unknown training option(s) ['lamda']" in result.stderr
    result = bnre(
        "evaluate-exact", "--task", "mg1", "--test", tmp_path / "test.h5", "--options", '{"grid": "uniform", "bins": 10, "pairs": 50}',
        "--budgets", 512, "--metrics", tmp_path / "x.csv", "--coverage", tmp_path / "y.csv",
        "--ranks", tmp_path / "z.csv", "--calibration", tmp_path / "w.csv", check=False,
    )
    assert result.returncode == 2 and "mg1: the likelihood is not tractable" in result.stderr
    assert not any(tmp_path.glob("x.*")) and not any(tmp_path.glob("[xyzw].csv"))


def test_threads_are_handed_to_torch_and_blas():
    code = (
        "import sys; from bnre.cli import main; import os;"
        "sys.argv=['bnre','--threads','3','merge','--output','/nonexistent/x','/nonexistent/y'];"
        "main(); import torch; print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.split()[-2:] == ["3", "3"], result.stderr


def test_grid_is_capped_at_max_cells():
    from bnre.evaluation.coverage import grid_bins

    assert grid_bins(90, 1, 2**15) == 90
    assert grid_bins(90, 2, 2**15) == 90
    assert grid_bins(90, 3, 2**15) == 32 and 32**3 <= 2**15 < 33**3


def test_evaluation_refuses_pairs_that_are_not_the_test_split(tmp_path):
    # metrics computed on the validation pairs (which chose the members' stopping epoch)
    # or on training pairs would be optimistic: the evaluate stage must refuse them
    for split, n in (("train", 300), ("val", 100)):
        bnre("simulate", "--task", "gaussian", "--split", split, "--seed", 1, "--start", 0, "--stop", n, "--output", tmp_path / f"{split}.h5")
    bnre(
        "train", "--task", "gaussian", "--method", "nre", "--budget", 256, "--train", tmp_path / "train.h5",
        "--val", tmp_path / "val.h5", "--options", '{"replicates": 1, "epochs": 1, "hidden": [8]}',
        "--model", tmp_path / "m.pt", "--history", tmp_path / "h.csv",
    )
    result = bnre(
        "evaluate", "--model", tmp_path / "m.pt", "--test", tmp_path / "val.h5", "--options", '{"grid": "uniform", "bins": 10, "pairs": 50}',
        "--metrics", tmp_path / "x.csv", "--coverage", tmp_path / "y.csv", "--ranks", tmp_path / "z.csv",
        "--calibration", tmp_path / "w.csv", check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "val.h5: holds the 'val' split, expected the 'test' split" in result.stderr
    assert not any(tmp_path.glob("[xyzw].csv"))


def test_the_command_line_is_thin():
    """cli.py parses arguments and calls the library: no function over 60 lines, and no
    option default of its own (they are the library's: TrainConfig, EvaluationConfig)."""
    import ast

    import bnre.cli

    tree = ast.parse(Path(bnre.cli.__file__).read_text())
    long = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 > 60}
    assert not long, f"functions over 60 lines: {long}"
    defaults = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            for keyword in node.keywords:
                if keyword.arg == "default":
                    try:
                        value = ast.literal_eval(keyword.value)
                    except ValueError:  # an expression: a default all the same
                        value = ast.unparse(keyword.value)
                    if value not in (None, "{}", []):  # none, the library's defaults, nothing
                        defaults.append((node.args[0].value, value))
    assert not defaults, f"options with a default of the command line's own: {defaults}"
