"""The SLURM profile: its settings, and its installation as the user's named profile.

Running it on a real SLURM is tests/slurm/test_slurm_profile.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"
PROFILE = ROOT / "profiles" / "slurm"

pytestmark = pytest.mark.workflow


def test_slurm_profile_settings():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1
    assert "simulate_block" in profile["slurm-array-jobs"]
    # what jobs need comes from the workflow config, where they go is left to the user
    assert "set-resources" not in profile and "default-resources" not in profile
    text = (PROFILE / "config.yaml").read_text()
    assert "slurm_partition" in text and "slurm_account" in text


def dry_run_with_profile(tmp_path, config_home):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", "slurm", "--dry-run",
         "--directory", str(tmp_path / "run"), "--configfile", str(TINY)],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "XDG_CONFIG_HOME": str(config_home)},
    )


def test_slurm_profile_installs_as_named_profile(tmp_path):
    # README: ln -s "$PWD/profiles/slurm" ~/.config/snakemake/slurm; snakemake --profile slurm
    config_home = tmp_path / "config"
    (config_home / "snakemake").mkdir(parents=True)
    missing = dry_run_with_profile(tmp_path, config_home)
    assert missing.returncode != 0 and "no profile.yaml (or config.yaml) found" in missing.stderr
    (config_home / "snakemake" / "slurm").symlink_to(PROFILE)
    result = dry_run_with_profile(tmp_path, config_home)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Using profile slurm" in output
    # the resources each job will ask SLURM for come from the workflow config
    train = re.search(r"^rule train:\n(?:    .*\n)*?    resources: (.*)$", output, re.M)
    assert train, output
    resources = dict(item.split("=", 1) for item in train.group(1).split(", "))
    assert {k: resources[k] for k in ("runtime", "gpu", "mem_mb")} == {"runtime": "720", "gpu": "0", "mem_mb": "8000"}
