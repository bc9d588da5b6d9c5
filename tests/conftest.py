import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Fail the session on skips not listed in tests/allowed_skips.txt when BNRE_STRICT_SKIPS=1
# (.ci/run) or CI=true: see tests/skip_policy.py.
from skip_policy import (  # noqa: E402
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory):
    """One completed local run of tests/config/tiny.yaml, shared (read-only) by the tests
    that dry-run against a finished workflow or compare other runs with it."""
    import subprocess

    workdir = tmp_path_factory.mktemp("tiny-workflow")
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2",
               "--directory", str(workdir), "--configfile", str(ROOT / "tests" / "config" / "tiny.yaml")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"tiny workflow failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return workdir
