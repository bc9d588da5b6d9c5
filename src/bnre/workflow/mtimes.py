"""A run directory's file times, restored from Snakemake's own records.

A checkout (``git clone``, an unpacked archive) gives every file the time it was written,
in an order unrelated to the DAG. Snakemake's ``mtime`` trigger then reads an input as
newer than the outputs made from it, and plans those jobs again. Snakemake records when
each job ended, per output, in ``.snakemake/metadata``: setting every recorded output's
modification time to its job's end time gives the files back the order the jobs ran in.

Snakemake also counts a job's benchmark file among its outputs (the oldest output decides),
and does not record it. The logs' folders, where this workflow keeps its benchmarks, get the
latest recorded end time: no input is older than that.
"""

import base64
import json
import os
from pathlib import Path

METADATA = Path(".snakemake") / "metadata"


def _records(directory: str | Path) -> dict[str, dict]:
    """Output path (relative to ``directory``) -> Snakemake's record of the job that wrote it.
    A record's file name is the path, URL-safe base64 encoded, split into directories named
    ``@<chunk>`` where it is longer than a file name may be."""
    root = Path(directory) / METADATA
    records = {}
    for record in sorted(p for p in root.rglob("*") if p.is_file()):
        parts = record.relative_to(root).parts
        encoded = "".join(part.removeprefix("@") for part in parts[:-1]) + parts[-1]
        try:
            output = base64.urlsafe_b64decode(encoded).decode()
            content = json.loads(record.read_text())
            float(content["endtime"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{record}: not a Snakemake metadata record ({error!r})") from None
        records[output] = content
    return records


def recorded_end_times(directory: str | Path) -> dict[str, float]:
    """Output path (relative to ``directory``) -> the end time Snakemake recorded for the
    job that wrote it."""
    return {output: float(record["endtime"]) for output, record in _records(directory).items()}


def restore_times(directory: str | Path) -> list[str]:
    """Set the modification time of every recorded output that exists in ``directory`` to
    its job's recorded end time, and of every other file in the folders of the recorded logs
    (``logs/``: logs and benchmarks) to the latest; return the outputs set. Other files, such
    as an output whose job never finished, keep their times."""
    directory = Path(directory)
    if not (directory / METADATA).is_dir():
        raise FileNotFoundError(f"{directory}: no {METADATA} here, so no record of when its jobs ran")
    records = _records(directory)
    ends = {output: float(record["endtime"]) for output, record in records.items()}
    restored = []
    for output, end in ends.items():
        path = directory / output
        if path.is_file():
            os.utime(path, (end, end))
            restored.append(output)
    if records:
        latest = max(ends.values())
        roots = {Path(log).parts[0] for record in records.values() for log in record.get("log") or []}
        for root in sorted(roots):
            for path in (directory / root).rglob("*"):
                if path.is_file() and str(path.relative_to(directory)) not in records:
                    os.utime(path, (latest, latest))
    return restored


def main(argv: list[str] | None = None) -> int:
    """``python -m bnre.workflow.mtimes DIRECTORY``: restore the run directory's times.
    (Not a ``python -m bnre`` command: a new command would change every job's code hash.)"""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m bnre.workflow.mtimes", description=main.__doc__)
    p.add_argument("directory", help="the run directory (Snakemake's --directory)")
    args = p.parse_args(argv)
    try:
        restored = restore_times(args.directory)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.directory}: {len(restored)} outputs given their jobs' recorded end times")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
