"""Same config and seed give the same data and the same results; a second run is locked out."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"

pytestmark = pytest.mark.workflow


def snakemake_command(workdir, *extra):
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(TINY), *extra]


def run_tiny(workdir):
    result = subprocess.run(snakemake_command(workdir, "--cores", "2"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_same_config_gives_identical_data_and_results(tiny_workflow, tmp_path):
    # the session's shared run of the tiny config (tests/conftest.py) and a second one
    first, second = tiny_workflow, tmp_path / "second"
    run_tiny(second)
    files = sorted(p.relative_to(first) for p in (first / "data").rglob("*.h5"))
    assert files
    for name in files:
        with h5py.File(first / name) as a, h5py.File(second / name) as b:
            for key in ("theta", "x"):
                assert a[key][:].tobytes() == b[key][:].tobytes(), f"{name}:{key}"
    for table in ("summary.csv", "coverage.csv"):
        a = pd.read_csv(first / "results" / table)
        b = pd.read_csv(second / "results" / table)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_second_run_in_same_directory_is_refused(tmp_path):
    # The first run writes to a file, not a pipe: after SIGTERM Snakemake waits for its running
    # job and repeats "Will exit after finishing currently running jobs" on every scheduler
    # pass, which fills an unread pipe and blocks it for good (CI stop 36 hung so).
    log = tmp_path.parent / f"{tmp_path.name}.first.log"
    with open(log, "w") as out:
        first = subprocess.Popen(snakemake_command(tmp_path, "--cores", "1"), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        locks = tmp_path / ".snakemake" / "locks"
        deadline = time.time() + 60
        while not (locks.exists() and any(locks.iterdir())):
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "the first run never took its lock"
            time.sleep(0.1)
        # a plain second run stops at the first run's in-flight (incomplete) outputs; with
        # --rerun-incomplete (as in profiles/local) it reaches the lock and stops there
        second = subprocess.run(snakemake_command(tmp_path, "--cores", "1"), capture_output=True, text=True)
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stderr or "Incomplete files" in second.stderr
        third = subprocess.run(snakemake_command(tmp_path, "--cores", "1", "--rerun-incomplete"), capture_output=True, text=True)
        assert third.returncode != 0
        assert "Directory cannot be locked" in third.stderr
    finally:
        first.terminate()
        try:
            first.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            raise AssertionError(f"the first run ignored SIGTERM for 300 s:\n{log.read_text()[-3000:]}")
