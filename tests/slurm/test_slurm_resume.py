"""A training job cancelled by SLURM mid-run is retried and resumes from its checkpoint.

scancel sends the job SIGTERM (then SIGKILL after KillWait): the trainer writes its
checkpoint and exits; Snakemake resubmits the job (profile: retries), and the retry
continues from the checkpoint to the same model as an uninterrupted local run.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from slurm_cluster import PARTITION

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "config" / "tiny.yaml"
TARGET = "models/gaussian/seed3/bnre/512.pt"  # tiny.yaml: seed 3

pytestmark = pytest.mark.workflow


def argv(workdir, configs, *args):
    # the target first: --configfile takes every argument up to the next option
    return [sys.executable, "-m", "snakemake", TARGET, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            *map(str, args), "--configfile", *map(str, configs)]


def test_cancelled_training_job_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    longer = tmp_path / "longer.yaml"
    longer.write_text(yaml.safe_dump({
        "train": {"epochs": 40, "patience": 40, "checkpoint_seconds": 0, "hidden": [64, 64]},
        "resources": {rule: {"runtime": 10, "mem_mb": 600} for rule in ("simulate_block", "merge_blocks", "train")},
    }))
    configs = [TINY, longer]
    cluster_dir = tmp_path / "cluster"
    command = argv(
        cluster_dir, configs, "--profile", "profiles/slurm",
        "--default-resources", f"slurm_partition={PARTITION}", "--slurm-no-account",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
    )
    checkpoint = cluster_dir / f"{TARGET}.checkpoint"
    earlier = {j["JobId"] for j in slurm_cluster.jobs()}  # the cluster is shared by the session
    log = tmp_path / "snakemake.log"
    start = time.perf_counter()
    cancelled = None
    with open(log, "w") as out:
        run = subprocess.Popen(command, cwd=ROOT, env=slurm_cluster.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while run.poll() is None and time.perf_counter() - start < 600:
                if cancelled is None and checkpoint.exists():
                    try:
                        epoch = torch.load(checkpoint, weights_only=True)["epoch"]
                    except Exception:  # being renamed into place
                        epoch = 0
                    if epoch >= 4:
                        for job in slurm_cluster.jobs():
                            if job.get("Comment", "").startswith("rule_train_") and job["JobState"] == "RUNNING":
                                subprocess.run(["scancel", job["JobId"]], env=slurm_cluster.env, check=True)
                                cancelled = job
                time.sleep(0.2)
        finally:
            if run.poll() is None:
                run.terminate()
            run.wait()
    output = log.read_text()
    assert run.returncode == 0, f"{output[-6000:]}\n{slurm_cluster.logs()}"
    assert cancelled is not None, "the training job was not seen running with a checkpoint"
    states = [
        j["JobState"] for j in slurm_cluster.jobs() if j["Comment"] == cancelled["Comment"] and j["JobId"] not in earlier
    ]
    assert sorted(states) == ["CANCELLED", "COMPLETED"]
    train_log = (cluster_dir / "logs/train/gaussian/seed3/bnre/512.log").read_text()
    assert "resumed from" in train_log, train_log[-2000:]
    assert not checkpoint.exists()

    # the same model as an uninterrupted local run
    local_dir = tmp_path / "local"
    local = subprocess.run(argv(local_dir, configs, "--cores", "1"), cwd=ROOT, capture_output=True, text=True)
    assert local.returncode == 0, local.stderr[-3000:]
    a = torch.load(cluster_dir / TARGET, weights_only=True)
    b = torch.load(local_dir / TARGET, weights_only=True)
    for sa, sb in zip(a["members"], b["members"]):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
