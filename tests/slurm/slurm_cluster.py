"""A real single-node SLURM cluster on localhost, for the tests.

munged (as the munge user), slurmctld and slurmd run in the foreground as children of
this process, with every file (configuration, keys, sockets, state, logs) under one
temporary directory; :meth:`Cluster.stop` ends them by PID. One node with the machine's
CPU layout and memory (``slurmd -C``), one partition, and a fake GPU (GRES ``gpu:1``
backed by /dev/null) so that jobs asking for a GPU schedule. No accounting database:
``sacct`` does not work, so clients must poll with ``squeue``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PARTITION = "bnre"
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")


def missing_binaries() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def cannot_run() -> str | None:
    """Why the tests cannot have a cluster here (SLURM not installed), or None."""
    missing = missing_binaries()
    if missing:
        return f"SLURM is not installed (missing {', '.join(missing)}; apt-get install slurm-wlm munge)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_layout() -> dict[str, str]:
    """The node line fields that ``slurmd -C`` reports for this machine."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    return {k: fields[k] for k in keep if k in fields}


class Cluster:
    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the test cluster needs root: munged runs as the munge user, slurmd as root")
        try:
            pwd.getpwnam("munge")
        except KeyError:
            raise RuntimeError("no munge user: apt-get install munge creates it") from None
        self.layout = node_layout()
        self.root = Path(tempfile.mkdtemp(prefix="bnre-slurm-"))
        self.root.chmod(0o755)  # the munge user must reach its directory
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "slurm.conf"
        # Inside a job, snakemake-executor-plugin-slurm-jobstep removes every SLURM_*
        # variable but the job's identity (SLURM_CONF too) before it calls srun; a real
        # cluster's configuration sits where srun looks by default (/etc/slurm), this one
        # does not: an `srun` first on PATH puts SLURM_CONF back and runs the real one.
        bin_dir = self.root / "bin"
        bin_dir.mkdir()
        srun = bin_dir / "srun"
        srun.write_text(f'#!/bin/sh\nexport SLURM_CONF={self.conf}\nexec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)
        path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}
        self.node = "bnre-node"

    # -- munge ---------------------------------------------------------------------------
    def _start_munge(self) -> None:
        munge = self.root / "munge"
        munge.mkdir()
        munge.chmod(0o755)  # munged: the socket directory must be world-executable
        user = pwd.getpwnam("munge")
        os.chown(munge, user.pw_uid, user.pw_gid)
        self.munge_socket = munge / "munge.socket"
        as_munge = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        subprocess.run(
            ["mungekey", "--create", f"--keyfile={munge / 'munge.key'}"],
            check=True, capture_output=True, **as_munge,
        )
        self._spawn(
            "munged",
            [
                "munged", "--foreground", f"--socket={self.munge_socket}",
                f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}",
            ],
            **as_munge,
        )
        self._wait(lambda: self.munge_socket.exists(), "munged socket")

    # -- slurm ---------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir()
        node = " ".join(f"{k}={v}" for k, v in self.layout.items())
        cpus = int(self.layout.get("CPUs", "1"))
        mem = int(self.layout.get("RealMemory", "1000"))
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(
            f"""\
ClusterName=bnre-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={self.root / 'state'}
SlurmdSpoolDir={self.root / 'spool'}
SlurmctldPidFile={self.root / 'slurmctld.pid'}
SlurmdPidFile={self.root / 'slurmd.pid'}
SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}
SlurmdLogFile={self.root / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={max(100, mem // (2 * cpus))}
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SchedulerType=sched/backfill
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 {node} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )
        (self.root / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")

    def start(self) -> "Cluster":
        try:
            self._start_munge()
            self._write_config()
            self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
            self._wait(lambda: self.scontrol("ping").returncode == 0 and "UP" in self.scontrol("ping").stdout, "slurmctld")
            self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
            self._wait(lambda: self.node_state() == "idle", "an idle node")
        except BaseException:
            self.stop()
            raise
        return self

    def scontrol(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["scontrol", *args], capture_output=True, text=True, env=self.env)

    def node_state(self) -> str:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env
        ).stdout.strip()
        return out

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones stay MinJobAge seconds)."""
        out = self.scontrol("show", "job", "--oneliner", "--details").stdout
        jobs = []
        for line in out.splitlines():
            if line.startswith("JobId="):
                jobs.append(dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", line)))
        return jobs

    def logs(self) -> str:
        text = []
        paths = sorted(self.root.glob("*.out")) + sorted((self.root / "log").glob("*.log"))
        for path in paths + [self.root / "munge" / "munged.log"]:
            if path.exists():
                text.append(f"==> {path.name} <==\n{path.read_text(errors='replace')[-5000:]}")
        return "\n".join(text)

    def _spawn(self, name: str, argv: list[str], **kwargs) -> None:
        log = open(self.root / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, **kwargs
        )

    def _wait(self, ready, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")

    def stop(self) -> None:
        """Cancel the jobs left, end the daemons by PID and remove the directory."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            ids = [j["JobId"] for j in self.jobs() if j.get("JobState") in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")]
            if ids:
                subprocess.run(["scancel", *ids], env=self.env, capture_output=True)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and any(
                    j.get("JobState") in ("RUNNING", "COMPLETING", "CONFIGURING") for j in self.jobs()
                ):
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
