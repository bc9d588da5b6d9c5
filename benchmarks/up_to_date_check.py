"""How long a finished workflow takes to find that it has nothing to do.

Run from the repository root::

    python benchmarks/up_to_date_check.py [--directory DIR --configfile FILE ...] [--repeats 3]

Without ``--directory``, the tiny config (``tests/config/tiny.yaml``) is run to completion in
a temporary directory first. Then, on the finished run, each of these is timed ``--repeats``
times (best kept), each printing "Nothing to be done":

* ours: ``snakemake --cores 2``, Snakemake's default re-run triggers (times, parameters,
  code, the set of inputs, software env); the workflow's parameters include every job's
  package code hash (``bnre.workflow.sourcegraph``), computed when the DAG is built;
* the peer: the same command with ``--rerun-triggers mtime``, Snakemake checking file times
  only: the least a Snakemake workflow can do to answer the same question.

The ratio is what tracking parameters and code costs on top of Snakemake's own check. The
work is parsing, hashing and file-system reads in one Python process, so no hardware peak
applies. Ends with ``up_to_date_check overhead_vs_mtime=<x>``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"


def command(directory: Path, configfiles: list[str], *extra: str) -> list[str]:
    """``snakemake --cores 2`` of this workflow on ``directory``."""
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2",
            "--directory", str(directory), "--configfile", *configfiles, *extra]


def snakemake(directory: Path, configfiles: list[str], *extra: str) -> float:
    """Wall seconds of one ``snakemake --cores 2`` on ``directory``; it must have nothing to do."""
    command_ = command(directory, configfiles, *extra)
    start = time.perf_counter()
    result = subprocess.run(command_, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0 or "Nothing to be done" not in output:
        raise SystemExit(f"{' '.join(command_)}: expected nothing to do, got:\n{output[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--directory", type=Path, help="a finished run (default: run the tiny config first)")
    parser.add_argument("--configfile", nargs="+", default=[str(TINY)], help="the run's config files")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        directory = args.directory
        if directory is None:
            directory = Path(scratch)
            start = time.perf_counter()
            subprocess.run(command(directory, args.configfile), capture_output=True, check=True)
            print(f"tiny run to completion: {time.perf_counter() - start:.0f} s")
        jobs = sum(p.is_file() for p in (directory / ".snakemake" / "metadata").rglob("*"))
        ours = min(snakemake(directory, args.configfile) for _ in range(args.repeats))
        peer = min(snakemake(directory, args.configfile, "--rerun-triggers", "mtime") for _ in range(args.repeats))
    print(f"finished run: {directory if args.directory else 'tiny config'} ({jobs} recorded outputs)")
    print(f"default triggers (params, code, input, mtime, software-env): {ours:.2f} s (best of {args.repeats})")
    print(f"--rerun-triggers mtime (the peer):                         {peer:.2f} s (best of {args.repeats})")
    print(f"up_to_date_check overhead_vs_mtime={ours / peer:.2f}")


if __name__ == "__main__":
    main()
