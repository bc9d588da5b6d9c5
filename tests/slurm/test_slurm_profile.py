"""The tiny workflow through `snakemake --profile profiles/slurm` on a real SLURM.

Every job goes through sbatch (simulation blocks as a job array), GPU requests schedule on
the fake GPU, per-rule and per-task resources reach sbatch, a job cancelled by the cluster
is retried with twice the runtime and memory, and the outputs equal a local run's bit for
bit (CPU, one thread, same seeds).
"""

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import h5py
import pytest
import torch
import yaml

from slurm_cluster import PARTITION

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "config" / "tiny.yaml"

pytestmark = pytest.mark.workflow


def snakemake_argv(workdir, *args):
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *map(str, args)]


def planned_counts(configs, tmp_path):
    """Jobs per rule of the DAG, from a dry-run in an empty directory."""
    result = subprocess.run(snakemake_argv(tmp_path / "plan", "--dry-run", "--configfile", *configs), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("Job stats:")[1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    counts.pop("total")
    counts.pop("all")  # no command: Snakemake itself checks it, nothing is submitted
    return counts


def rule_of(job):
    """The rule a SLURM job ran: the plugin puts `rule_<rule>_wildcards_<...>` in its comment."""
    return re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", job["Comment"]).group(1)


def megabytes(value):
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([MG])", value).groups()
    return float(number) * (1024 if unit == "G" else 1)


def minutes(limit):
    h, m, s = map(int, limit.split(":"))
    return 60 * h + m + s / 60


def assert_same_outputs(local: Path, cluster: Path):
    data = sorted(p.relative_to(local) for p in local.glob("data/*/*/*.h5"))
    assert data and data == sorted(p.relative_to(cluster) for p in cluster.glob("data/*/*/*.h5"))
    for name in data:
        with h5py.File(local / name) as a, h5py.File(cluster / name) as b:
            assert set(a) == set(b), name
            for key in a:
                assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, f"{name}:{key}"
                assert a[key][()].tobytes() == b[key][()].tobytes(), f"{name}:{key} differs"
            # provenance records the command line and commit, which may differ between runs
            strip = lambda attrs: {k: v for k, v in attrs.items() if k != "provenance"}  # noqa: E731
            assert strip(a.attrs) == strip(b.attrs), name
    models = sorted(p.relative_to(local) for p in local.glob("models/*/*/*/*.pt"))
    assert models and models == sorted(p.relative_to(cluster) for p in cluster.glob("models/*/*/*/*.pt"))
    for name in models:
        a, b = (torch.load(root / name, weights_only=False) for root in (local, cluster))
        for key in ("task", "budget", "config", "member_seeds"):
            assert a[key] == b[key], f"{name}: {key}"
        assert len(a["members"]) == len(b["members"])
        for sa, sb in zip(a["members"], b["members"]):
            sa, sb = sa.get("state_dict", sa), sb.get("state_dict", sb)
            assert sa.keys() == sb.keys()
            for key in sa:
                if isinstance(sa[key], torch.Tensor):
                    assert torch.equal(sa[key], sb[key]), f"{name}: {key} differs"
    tables = sorted(p.relative_to(local) for p in local.glob("results/**/*.csv"))
    assert tables and tables == sorted(p.relative_to(cluster) for p in cluster.glob("results/**/*.csv"))
    for name in tables:
        assert (local / name).read_bytes() == (cluster / name).read_bytes(), f"{name} differs"


def test_tiny_workflow_through_the_slurm_profile(slurm_cluster, tiny_workflow, tmp_path):
    cpus = int(slurm_cluster.layout.get("CPUs", "1"))
    cluster_config = tmp_path / "cluster.yaml"
    small = {"runtime": 10, "mem_mb": 600}
    cluster_config.write_text(yaml.safe_dump({"resources": {
        "simulate_block": {**small},
        "merge_blocks": {**small},
        "train": {**small, "tasks": {"slcp": {"gpu": 1}}},  # a per-task GPU request
        "evaluate": {**small},
        "aggregate_summary": {**small, "threads": min(2, cpus)},
        "aggregate_coverage": {**small},
        "figures": {**small},
    }}))
    configs = [TINY, cluster_config]
    expected = planned_counts(configs, tmp_path)
    workdir = tmp_path / "run"
    argv = snakemake_argv(
        workdir, "--profile", "profiles/slurm", "--configfile", *configs,
        # for this cluster: its partition, no accounting (so no sacct, no account), quick polls
        "--default-resources", f"slurm_partition={PARTITION}", "--slurm-no-account",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
    )
    log = tmp_path / "snakemake.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        run = subprocess.Popen(argv, cwd=ROOT, env=slurm_cluster.env, stdout=out, stderr=subprocess.STDOUT)
        # cancel the first evaluation SLURM runs: Snakemake must retry it, with more time and memory
        cancelled = None
        try:
            while run.poll() is None and time.perf_counter() - start < 800:
                if cancelled is None:
                    for job in slurm_cluster.jobs():
                        if job.get("Comment", "").startswith("rule_") and rule_of(job) == "evaluate" \
                                and job["JobState"] == "RUNNING":
                            subprocess.run(["scancel", job["JobId"]], env=slurm_cluster.env, check=True)
                            cancelled = job
                            break
                time.sleep(0.3)
        finally:
            if run.poll() is None:
                run.terminate()
            run.wait()
    seconds = time.perf_counter() - start
    output = log.read_text()
    print(f"SLURM run of the tiny workflow: {seconds:.0f} s")
    assert run.returncode == 0, f"{output[-6000:]}\n{slurm_cluster.logs()}"
    assert cancelled is not None, "no evaluate job was seen running"

    jobs = slurm_cluster.jobs()
    assert {j["Partition"] for j in jobs} == {PARTITION}
    states = Counter((rule_of(j), j["JobState"]) for j in jobs)
    # every job of the DAG ran through sbatch and completed; the cancelled one once more
    assert {rule: n for (rule, state), n in states.items() if state == "COMPLETED"} == expected, output[-4000:]
    assert {key: n for key, n in states.items() if key[1] != "COMPLETED"} == {("evaluate", "CANCELLED"): 1}

    # the retry: same job, attempt 2, twice the runtime and memory of attempt 1
    retried = [j for j in jobs if j["Comment"] == cancelled["Comment"] and j["JobState"] == "COMPLETED"]
    assert len(retried) == 1
    assert minutes(retried[0]["TimeLimit"]) == 2 * minutes(cancelled["TimeLimit"]) == 2 * small["runtime"]
    assert megabytes(retried[0]["MinMemoryNode"]) == 2 * megabytes(cancelled["MinMemoryNode"]) == 2 * small["mem_mb"]

    # simulation blocks went as one or more job arrays
    blocks = [j for j in jobs if rule_of(j) == "simulate_block"]
    assert all(j.get("ArrayJobId") and j.get("ArrayTaskId") for j in blocks)
    # the GPU where the config asks for one (per task), none elsewhere
    for job in jobs:
        gpu = "gpu" in (job.get("TresPerJob") or "")
        assert gpu == job["Comment"].startswith("rule_train_wildcards_slcp_"), job["Comment"]
    # threads -> --cpus-per-task
    for job in jobs:
        assert int(job["NumCPUs"]) == (min(2, cpus) if rule_of(job) == "aggregate_summary" else 1), job["Comment"]

    assert_same_outputs(tiny_workflow, workdir)
