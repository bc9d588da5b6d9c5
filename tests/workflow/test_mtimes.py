"""Restoring a copied run directory's times from Snakemake's records (bnre.workflow.mtimes).

The yardstick is Snakemake itself: a finished run whose files lost their order plans its
jobs again, and after the restore a dry-run finds nothing to do.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from bnre.workflow.mtimes import main, recorded_end_times, restore_times
from snakemake_cli import snakemake_output

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "config" / "tiny.yaml"


def planned_rules(workdir) -> set[str]:
    # Snakemake compares the checksums it recorded of inputs under 1 MB instead of their
    # times; a study's training sets are larger. Checksumming nothing gives the tiny run the
    # study's case.
    output = snakemake_output(
        "--dry-run", "--directory", workdir, "--configfile", TINY, "--max-checksum-file-size", 1
    )
    return set(re.findall(r"^(?:local)?rule (\w+):$", output, re.M))


@pytest.mark.workflow
def test_a_clone_with_inputs_newer_than_outputs_plans_nothing_once_restored(tiny_workflow, tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(tiny_workflow, clone, copy_function=shutil.copyfile)  # a checkout: no times kept
    files = [p for p in clone.rglob("*") if p.is_file() and ".snakemake" not in p.parts]
    # the order a checkout may give: the simulations written last, after the models and results
    for p in files:
        t = 1_000_000_000 + (100 if p.parts[len(clone.parts)] == "data" else 0)
        os.utime(p, (t, t))
    assert "train" in planned_rules(clone)

    restored = restore_times(clone)
    assert {"results/summary.csv", "results/coverage.csv"} <= set(restored)
    assert any(r.startswith("models/") and r.endswith(".pt") for r in restored)
    assert planned_rules(clone) <= {"all"}, "a restored finished run must plan no job"
    # each output has the end time of its own job, as recorded; the benchmarks (which
    # Snakemake counts among a job's outputs, unrecorded) are no older than any of them
    ends = recorded_end_times(clone)
    for output, end in ends.items():
        if (clone / output).exists():
            assert (clone / output).stat().st_mtime == pytest.approx(end, abs=1e-6)
    benchmarks = list((clone / "logs" / "benchmarks").rglob("*.tsv"))
    assert benchmarks and all(b.stat().st_mtime >= max(ends.values()) - 1e-6 for b in benchmarks)


@pytest.mark.workflow
def test_long_output_paths_are_decoded_from_snakemakes_split_record_names(tmp_path):
    # an output path whose base64 name is longer than a file name may be: Snakemake splits it
    # into "@chunk" directories
    name = "/".join(["d" * 60] * 4) + "/out.txt"
    (tmp_path / "Snakefile").write_text(f'rule all:\n    output: "{name}"\n    shell: "echo x > {{output}}"\n')
    snakemake_output("--cores", "1", snakefile=None, cwd=tmp_path)
    records = [p for p in (tmp_path / ".snakemake" / "metadata").rglob("*") if p.is_file()]
    assert len(records) == 1 and len(records[0].relative_to(tmp_path / ".snakemake" / "metadata").parts) > 1
    times = recorded_end_times(tmp_path)
    assert list(times) == [name]
    assert times[name] == pytest.approx(float(json.loads(records[0].read_text())["endtime"]))
    os.utime(tmp_path / name, (1.0, 1.0))
    assert restore_times(tmp_path) == [name]
    assert (tmp_path / name).stat().st_mtime == pytest.approx(times[name])


def test_bad_input_is_named(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=r"no \.snakemake/metadata here"):
        restore_times(tmp_path)
    assert main([str(tmp_path)]) == 2 and "no .snakemake/metadata" in capsys.readouterr().err
    record = tmp_path / ".snakemake" / "metadata" / "bm90LWpzb24="  # "not-json"
    record.parent.mkdir(parents=True)
    record.write_text("{")
    with pytest.raises(ValueError, match="not a Snakemake metadata record"):
        restore_times(tmp_path)
    record.write_text(json.dumps({"rule": "x"}))  # no end time
    with pytest.raises(ValueError, match="not a Snakemake metadata record"):
        recorded_end_times(tmp_path)
