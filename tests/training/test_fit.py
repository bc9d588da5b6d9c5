"""Vectorised ensemble training: agreement with independent runs, optimiser, resume."""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pytest
import torch

from bnre.methods import get_method
from bnre.methods.config import TrainConfig
from bnre.sampling import member_seed, member_subset
from bnre.simulation.pairs import Pairs, write_pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task
from bnre.training.fit import fit_ensemble
from reference_trainer import train_member

ROOT = Path(__file__).resolve().parents[2]


def pairs(task, split, n):
    return Pairs(*simulate_range(get_task(task), split, 1, 0, n), {"task": task})


def fit_members(task, config, train, val, budget, block=1, seed=None):
    """``config.replicates`` members of ``config``'s method trained together on ``budget``
    pairs each (blocks of ``block`` rows); seeds from ``seed`` (default ``config.seed``)."""
    seeds = [member_seed(config.seed if seed is None else seed, task.name, budget, k) for k in range(config.replicates)]
    estimators = []
    for s in seeds:
        torch.manual_seed(s)
        estimators.append(get_method(config).estimator(task))
    subsets = [member_subset(s, len(train), budget, block) for s in seeds]
    return fit_ensemble(task, estimators, seeds, subsets, train, val, config, log=lambda _: None)


@pytest.mark.parametrize("warmup, block", [(0, 1), (3, 128)])
def test_vectorised_members_equal_independent_runs(warmup, block):
    task = get_task("slcp")
    train, val = pairs("slcp", "train", 2048), pairs("slcp", "val", 512)
    # small scheduler patience and early-stopping patience exercise both per-member paths
    config = TrainConfig(
        method="bnre", replicates=3, epochs=12, patience=3, hidden=[32, 32], batch_size=64, scheduler_patience=0,
        lambda_warmup=warmup, shuffle_block=block, lmbda=100,  # the schedules this case was built on
    )
    states, history = fit_members(task, config, train, val, 1000, block)
    for k in range(3):
        ref_state, ref_history = train_member(task, config, train, val, 1000, k)
        mine = [h for h in history if h["member"] == k]
        assert len(mine) == len(ref_history)
        for a, b in zip(mine, ref_history):
            assert a["epoch"] == b["epoch"]
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
            assert a["lr"] == pytest.approx(b["lr"], rel=1e-6)
        # Adam's sign-like steps amplify float rounding of near-zero gradients: weights agree
        # to ~1e-5..1e-4 while the losses above agree to 1e-7; a wrong batch differs by 1e-2
        for name, value in ref_state.items():
            assert torch.allclose(states[k][name], value, rtol=1e-3, atol=2e-4), name
    # both per-member paths were exercised: some member stopped early, some member's
    # learning rate was reduced, and the members did not all follow the same schedule
    lengths = [len([h for h in history if h["member"] == k]) for k in range(3)]
    assert min(lengths) < config.epochs, lengths
    assert min(h["lr"] for h in history) < config.lr
    assert len(set(lengths)) > 1 or len({tuple(h["lr"] for h in history if h["member"] == k) for k in range(3)}) > 1


@pytest.mark.parametrize("method", ["cnre", "bnre_c", "npe", "bnpe", "calnre", "calnpe"])
def test_vectorised_members_of_every_method_equal_independent_runs(method):
    """The contrastive and the flow methods through the stacked trainer (vmap over a zuko
    flow for NPE) and through the plain single-member loop: the same losses, schedules,
    penalty diagnostics and weights."""
    task = get_task("slcp")
    train, val = pairs("slcp", "train", 2048), pairs("slcp", "val", 512)
    # the calibration regulariser's ranks are step functions of the densities: once float
    # rounding (stacked against single matmuls) flips one indicator, the runs part by more
    # than rounding, which happens within a few epochs (a member of calnre's case parts at
    # epoch 3 by 1e-4); two epochs compare them before that
    epochs = 2 if method.startswith("cal") else 5
    config = TrainConfig(
        method=method, replicates=2, epochs=epochs, patience=2, hidden=[32, 32], batch_size=64, scheduler_patience=0,
        lr=3e-3, cardinality=3, gamma=2.0, flow_transforms=2, flow_hidden=[16, 16], marginals="permute", lmbda=10.0,
    )
    keys = ("train_loss", "val_loss", "val_balancing", "penalty_variance")
    for state, _, ref_state, _ in members_against_the_reference(task, config, train, val, keys, nan_ok=True):
        for name, value in ref_state.items():
            assert torch.allclose(state[name], value, rtol=1e-3, atol=2e-4), name
    # (the per-member schedules and early stops are the method-independent code of the test above)


def members_against_the_reference(task, config, train, val, keys, nan_ok=False):
    """Train ``config``'s members stacked and each alone in the reference loop
    (tests/reference_trainer.py); check that the epochs, ``keys``, the penalty violation
    and the learning rate agree, and return each member's (state, history, reference
    state, reference history)."""
    states, history = fit_members(task, config, train, val, 1000)
    members = []
    for k in range(config.replicates):
        ref_state, ref_history = train_member(task, config, train, val, 1000, k)
        mine = [h for h in history if h["member"] == k]
        assert [h["epoch"] for h in mine] == [h["epoch"] for h in ref_history]
        for a, b in zip(mine, ref_history):
            for key in keys:
                assert a[key] == pytest.approx(b[key], rel=2e-4, abs=1e-9, nan_ok=nan_ok), (key, a["epoch"])
            assert a["penalty_violation"] == penalty_violation_approx(b), a["epoch"]
            assert a["lr"] == pytest.approx(b["lr"], rel=1e-6)
        members.append((states[k], mine, ref_state, ref_history))
    return members


def penalty_violation_approx(reference: dict):
    r"""``penalty_violation`` = :math:`\lambda m^2`, with :math:`m` the mean of the epoch's
    batch violations, is compared at ``rel=2e-4`` of the scale :math:`m` is computed at: the
    batch violations' spread :math:`s = \sqrt{V}`, not :math:`m`, which cancels to near 0
    (then float32 summation alone moves :math:`m^2` by more than ``2e-4`` of itself).
    :math:`|\Delta(\lambda m^2)| \approx 2 \lambda |m| \Delta m` with
    :math:`\Delta m \le 2 \cdot 10^{-4} s` gives ``abs`` (``penalty_variance`` =
    :math:`\lambda V`)."""
    scale = math.sqrt(max(reference["penalty_violation"], 0.0) * max(reference["penalty_variance"], 0.0))
    return pytest.approx(reference["penalty_violation"], rel=2e-4, abs=2 * 2e-4 * scale + 1e-9, nan_ok=True)


AUTHORS = dict(bce="sum", marginals="permute", early_stopping=False, keep="last", validation_loss="batches",
               normalise="none", weight_decay=0.0, scheduler_factor=0.1, scheduler_patience=0, scheduler_min_lr=2e-3)


@pytest.mark.parametrize(
    "options",
    [AUTHORS, dict(penalty="unbiased", keep="last", patience=2, scheduler_patience=0)],
    ids=["authors-protocol", "unbiased-penalty"],
)
def test_protocol_options_in_the_stacked_trainer_equal_a_plain_loop(options):
    """Every protocol option, and the penalty diagnostics, as the single-member reference
    loop (tests/reference_trainer.py) computes them with torch's own optimiser."""
    task = get_task("slcp")
    train, val = pairs("slcp", "train", 2048), pairs("slcp", "val", 512)
    config = TrainConfig(method="bnre", replicates=2, epochs=7, hidden=[32, 32], batch_size=64, lr=0.01, **options)
    members = members_against_the_reference(task, config, train, val, ("train_loss", "val_loss", "penalty_variance"))
    for state, mine, ref_state, ref_history in members:
        for a, b in zip(mine, ref_history):
            for key in ("grad_norm_bce", "grad_norm_penalty"):
                assert a[key] == pytest.approx(b[key], rel=2e-3), (key, a["epoch"])
        assert mine[-1]["kept"] and sum(h["kept"] for h in mine) == 1  # keep="last": the last epoch
        for name, value in ref_state.items():
            assert torch.allclose(state[name], value, rtol=1e-3, atol=2e-4), name
    states, history = [m[0] for m in members], [h for m in members for h in m[1]]
    if options is AUTHORS:
        assert all(len([h for h in history if h["member"] == k]) == config.epochs for k in range(2))
        assert min(h["lr"] for h in history) == pytest.approx(config.scheduler_min_lr)  # reduced, to the floor
        for name in ("theta_shift", "theta_scale", "x_mean", "x_std"):  # raw inputs
            assert torch.equal(states[0][name], torch.full_like(states[0][name], float(name.endswith(("scale", "std")))))
    assert all(h["grad_norm_penalty"] > 0 and h["penalty_violation"] >= 0 and h["penalty_variance"] >= 0 for h in history)


def test_mixed_precision_training_tracks_float32():
    """bfloat16 autocast (amp) trains to nearly the float32 losses."""
    task = get_task("slcp")
    train, val = pairs("slcp", "train", 2048), pairs("slcp", "val", 512)
    curves = {}
    for amp in (False, True):
        config = TrainConfig(method="bnre", replicates=2, epochs=3, hidden=[64, 64], amp=amp)
        _, history = fit_members(task, config, train, val, 2048, seed=0)
        curves[amp] = np.array([[h["train_loss"], h["val_loss"]] for h in history])
    assert np.isfinite(curves[True]).all()
    assert not np.array_equal(curves[True], curves[False])  # autocast did change the arithmetic
    assert np.abs(curves[True] - curves[False]).max() < 0.02
    assert curves[True][-1, 1] < curves[True][0, 1] + 0.01  # and it still learns


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    task = get_task("gaussian")
    for split, n in (("train", 4096), ("val", 1024)):
        theta, x = simulate_range(task, split, 1, 0, n)
        write_pairs(out / f"{split}.h5", theta, x, task="gaussian", split=split, seed=1, start=0, stop=n)
    return out


OPTIONS = '{"replicates": 2, "epochs": 12, "patience": 100, "hidden": [64, 64], "batch_size": 32, "checkpoint_seconds": 0}'
# block sampling; the second streams x from the HDF5 files (a 10 kB limit, the data is 60 kB)
BLOCKS = OPTIONS[:-1] + ', "shuffle_block": 256}'
STREAMED = BLOCKS[:-1] + ', "memory_limit_mb": 0.01}'


def train_command(directory, name, options=OPTIONS, method="bnre"):
    return [
        sys.executable, "-m", "bnre", "--threads", "1", "train", "--task", "gaussian", "--method", method,
        "--budget", "4096", "--train", str(directory / "train.h5"), "--val", str(directory / "val.h5"),
        "--options", options, "--model", str(directory / f"{name}.pt"), "--history", str(directory / f"{name}.csv"),
    ]


def run(command):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(command, capture_output=True, text=True, env=env)


def start(command):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def uninterrupted(data_files):
    result = run(train_command(data_files, "reference"))
    assert result.returncode == 0, result.stderr
    return torch.load(data_files / "reference.pt", weights_only=True)


def wait_for_epochs(process, checkpoint: Path, epochs: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if checkpoint.exists():
            try:
                state = torch.load(checkpoint, weights_only=True)
                if state["epoch"] > epochs:
                    return
            except Exception:  # being renamed into place
                pass
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise TimeoutError("no checkpoint")


def assert_same_model(a: dict, b: dict) -> None:
    for sa, sb in zip(a["members"], b["members"]):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_training_resumes_to_the_same_result(data_files, uninterrupted, sig):
    name = f"killed_{sig.name}"
    checkpoint = data_files / f"{name}.pt.checkpoint"
    process = start(train_command(data_files, name))
    wait_for_epochs(process, checkpoint, 3)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert process.returncode == 143, stderr
    assert checkpoint.exists() and not (data_files / f"{name}.pt").exists()
    result = run(train_command(data_files, name))
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout
    assert not checkpoint.exists()
    assert_same_model(torch.load(data_files / f"{name}.pt", weights_only=True), uninterrupted)
    history = np.genfromtxt(data_files / f"{name}.csv", delimiter=",", names=True)
    reference = np.genfromtxt(data_files / "reference.csv", delimiter=",", names=True)
    assert np.array_equal(history["val_loss"], reference["val_loss"])


@pytest.mark.parametrize("method", ["bnre_c", "bnpe", "calnre", "calnpe"])
def test_killed_training_of_the_contrastive_and_flow_methods_resumes_and_streams_to_the_same_result(data_files, method):
    """A contrastive and a flow ensemble: killed with SIGKILL and resumed, and streamed from
    HDF5 in blocks, each gives bit for bit the uninterrupted in-memory model."""
    options = ('{"replicates": 2, "epochs": 8, "patience": 100, "batch_size": 64, "checkpoint_seconds": 0, '
               '"hidden": [32], "flow_transforms": 2, "flow_hidden": [16, 16], "shuffle_block": 256}')
    streamed = options[:-1] + ', "memory_limit_mb": 0.01}'
    reference = run(train_command(data_files, f"{method}_reference", options, method))
    assert reference.returncode == 0, reference.stderr
    name = f"{method}_killed"
    checkpoint = data_files / f"{name}.pt.checkpoint"
    process = start(train_command(data_files, name, options, method))
    wait_for_epochs(process, checkpoint, 2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert checkpoint.exists() and not (data_files / f"{name}.pt").exists()
    result = run(train_command(data_files, name, options, method))
    assert result.returncode == 0 and "resumed from" in result.stdout, result.stderr
    expected = torch.load(data_files / f"{method}_reference.pt", weights_only=True)
    assert_same_model(torch.load(data_files / f"{name}.pt", weights_only=True), expected)
    result = run(train_command(data_files, f"{method}_streamed", streamed, method))
    assert result.returncode == 0 and "stream" in result.stdout + result.stderr, result.stderr
    assert_same_model(torch.load(data_files / f"{method}_streamed.pt", weights_only=True), expected)


def test_checkpoint_of_another_configuration_is_ignored(data_files, uninterrupted):
    """A checkpoint left by a killed run with other options must not leak into this run."""
    name = "reconfigured"
    checkpoint = data_files / f"{name}.pt.checkpoint"
    other = OPTIONS[:-1] + ', "lambda_warmup": 4, "epochs": 500}'
    process = start(train_command(data_files, name, other))
    wait_for_epochs(process, checkpoint, 2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    result = run(train_command(data_files, name))
    assert result.returncode == 0, result.stderr
    assert "belongs to another configuration" in result.stdout and "resumed from" not in result.stdout
    assert_same_model(torch.load(data_files / f"{name}.pt", weights_only=True), uninterrupted)


def test_streamed_training_killed_resumes_to_the_in_memory_result(data_files):
    """Stream from HDF5, SIGKILL mid-run, resume: bit for bit the model trained in memory."""
    in_memory = run(train_command(data_files, "blocks", BLOCKS))
    assert in_memory.returncode == 0, in_memory.stderr
    assert "streaming" not in in_memory.stdout
    checkpoint = data_files / "streamed.pt.checkpoint"
    process = start(train_command(data_files, "streamed", STREAMED))
    wait_for_epochs(process, checkpoint, 3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    result = run(train_command(data_files, "streamed", STREAMED))
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout and "streaming" in result.stdout
    reference = torch.load(data_files / "blocks.pt", weights_only=True)
    assert_same_model(torch.load(data_files / "streamed.pt", weights_only=True), reference)


def test_model_records_provenance(uninterrupted):
    assert uninterrupted["provenance"]["version"]
    assert "train" in uninterrupted["provenance"]["argv"]
    assert uninterrupted["config"]["checkpoint_seconds"] == 0
    assert set(uninterrupted["libraries"]) >= {"torch", "numpy", "python"}


NAN = float("nan")
#: Scripted validation losses per member and epoch (patience 3): member 0 is best at epoch
#: 2 and stops at 5; member 1 is best at epoch 4 despite NaN losses (a NaN is never an
#: improvement) and stops at 7; member 2 improves every epoch and runs all 10.
SCRIPT = {
    0: [1.0, 0.5, 0.6, 0.7, 0.8],
    1: [1.0, 0.9, NAN, 0.8, NAN, NAN, NAN],
    2: [1.0 - 0.05 * e for e in range(10)],
}


def scripted_fit(monkeypatch, patience):
    """fit_ensemble on real Gaussian pairs with validation losses taken from SCRIPT; returns
    its best states, its history and every member's weights at the end of every epoch."""
    from bnre.training.stacked import StackedEnsemble

    calls, snapshots = {"n": 0}, {}

    def validate(self, validation, method, batch=None):
        calls["n"] += 1
        epoch = calls["n"]
        loss = torch.tensor([SCRIPT[m][epoch - 1] if epoch <= len(SCRIPT[m]) else 0.0 for m in self.active])
        return loss, torch.ones(len(self.active))

    record = StackedEnsemble.record

    def recording(self, epoch, val_loss):
        for i, member in enumerate(self.active):
            snapshots[member, epoch] = self.member_state(i)
        record(self, epoch, val_loss)

    monkeypatch.setattr(StackedEnsemble, "validate", validate)
    monkeypatch.setattr(StackedEnsemble, "record", recording)
    task = get_task("gaussian")
    train, val = pairs("gaussian", "train", 512), pairs("gaussian", "val", 128)
    config = TrainConfig(method="nre", replicates=3, epochs=10, patience=patience, hidden=[8], batch_size=64,
                         scheduler_patience=100)
    states, history = fit_members(task, config, train, val, 256)
    return states, history, snapshots


def test_scripted_validation_losses_force_early_stops_and_restore_the_best_weights(monkeypatch):
    states, history, snapshots = scripted_fit(monkeypatch, patience=3)
    epochs = {k: [h["epoch"] for h in history if h["member"] == k] for k in range(3)}
    assert epochs == {0: [1, 2, 3, 4, 5], 1: list(range(1, 8)), 2: list(range(1, 11))}
    best = {0: 2, 1: 4, 2: 10}
    for member, epoch in best.items():
        for name, value in states[member].items():
            assert torch.equal(value, snapshots[member, epoch][name]), (member, name)
        # the kept weights are the best epoch's, not the last epoch's
        last = epochs[member][-1]
        if last != epoch:
            assert not all(torch.equal(v, snapshots[member, last][n]) for n, v in states[member].items())
    nan_rows = [h for h in history if h["member"] == 1 and h["epoch"] in (3, 5, 6, 7)]
    assert all(np.isnan(h["val_loss"]) for h in nan_rows)


def test_dropping_members_leaves_the_others_untouched(monkeypatch):
    """Member 2's weights after 10 epochs do not depend on members 0 and 1 stopping early."""
    dropped, _, snapshots_dropped = scripted_fit(monkeypatch, patience=3)
    monkeypatch.undo()
    kept, history, snapshots_kept = scripted_fit(monkeypatch, patience=100)
    assert {h["member"] for h in history if h["epoch"] == 10} == {0, 1, 2}
    for name, value in dropped[2].items():
        assert torch.allclose(value, kept[2][name], rtol=1e-6, atol=1e-7), name
    for epoch in range(1, 11):
        for name, value in snapshots_dropped[2, epoch].items():
            assert torch.allclose(value, snapshots_kept[2, epoch][name], rtol=1e-6, atol=1e-7), (epoch, name)
