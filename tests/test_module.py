"""The workflow used as a Snakemake module by another project: its own Snakefile, config
and working directory; the schema, environments, report captions and the package resolve
from the workflow's directory."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.workflow

CONFIG = {
    "seed": 2,
    "tasks": ["gaussian"],
    "methods": ["nre", "bnre"],
    "budgets": [128],
    "replicates": 2,
    "observations": {"gaussian": ["data_in/observed.npy"]},
    "infer": {"samples": 100},
    "simulation": {"block_size": 256, "train": 256, "val": 128, "test": 64},
    "train": {"batch_size": 32, "epochs": 2, "patience": 2, "hidden": [8]},
    "evaluate": {"bins": 10, "pairs": 64},
    "figures": {"formats": ["png"]},
    "resources": {"train": {"threads": 1}, "evaluate": {"threads": 1}, "infer": {"threads": 1}},
}


def test_another_project_uses_the_workflow_as_a_module(tmp_path):
    project = tmp_path / "project"
    (project / "data_in").mkdir(parents=True)
    np.save(project / "data_in" / "observed.npy", np.array([0.2, -0.4]))
    (project / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (project / "Snakefile").write_text(textwrap.dedent(f"""
        configfile: "config.yaml"


        module bnre:
            snakefile:
                "{ROOT / 'Snakefile'}"
            config:
                config


        use rule * from bnre as bnre_*
    """))

    def snakemake(*args):
        done = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    snakemake("--cores", "2")
    summary = pd.read_csv(project / "results" / "summary.csv", dtype={"replicate": str})
    assert set(summary.method) == {"nre", "bnre", "exact"}
    intervals = pd.read_csv(project / "results" / "gaussian" / "seed2" / "observed" / "observed" / "intervals.csv")
    assert set(intervals.method) == {"nre", "bnre"}
    assert (project / "figures" / "observed_gaussian_observed_seed2.png").is_file()
    assert "Nothing to be done" in snakemake("--cores", "1", "--dry-run")
    snakemake("--report", "report.html")
    assert (project / "report.html").stat().st_size > 100_000
