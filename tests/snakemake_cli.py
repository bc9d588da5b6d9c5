"""Snakemake as a user runs it: its command line, in a subprocess."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_snakemake(*args, snakefile: Path | None = ROOT / "Snakefile", cwd: Path = ROOT, check: bool = True):
    """Run ``snakemake [-s snakefile] *args`` in ``cwd``; with ``check``, fail the test on a non-zero exit.

    ``snakefile=None`` lets Snakemake find the workflow in ``cwd`` itself.
    """
    command = [sys.executable, "-m", "snakemake", *(["-s", str(snakefile)] if snakefile else []), *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def snakemake_output(*args, **kwargs) -> str:
    """What a successful ``run_snakemake`` printed, stdout then stderr."""
    result = run_snakemake(*args, **kwargs)
    return result.stdout + result.stderr
