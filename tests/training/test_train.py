"""Training: seeds, subsets, the model file, and learning on the Gaussian task."""

import math
import numpy as np
import pandas as pd
import pytest
import torch

from bnre.methods import get_method
from bnre.methods.config import TrainConfig
from bnre.methods.model_file import load_ensemble
from bnre.sampling import member_seed
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task
from bnre.training.train import train_ensemble


def pairs(task, split, n, seed=1):
    theta, x = simulate_range(get_task(task), split, seed, 0, n)
    return Pairs(theta, x, {"task": task})


def test_member_seeds_are_distinct_and_method_free():
    seeds = {member_seed(0, "slcp", 1024, k) for k in range(5)}
    assert len(seeds) == 5
    assert member_seed(0, "slcp", 1024, 0) != member_seed(0, "slcp", 2048, 0)
    assert member_seed(0, "slcp", 1024, 0) != member_seed(0, "gaussian", 1024, 0)


def nre_penalty(config, epoch=None):
    """The penalty weight a method's loss applies: its loss minus NRE's, per unit of the
    squared balancing violation, on logits whose violation is exactly 0.5."""
    from bnre.methods.losses import nre_loss
    from bnre.nets.logits import Logits

    joint, marginal = torch.zeros(1, 4), torch.full((1, 4), math.log(2))  # d = 1/2 and 2/3
    violation = (0.5 + 2 / 3 - 1) ** 2
    logits = Logits(joint, marginal)
    return float((get_method(config).loss(logits, epoch) - nre_loss(joint, marginal)) / violation)


def test_lambda_warmup_ramps_the_penalty_linearly():
    config = TrainConfig(method="bnre", lmbda=100, lambda_warmup=4)
    assert [nre_penalty(config, e) for e in range(1, 7)] == pytest.approx([25, 50, 75, 100, 100, 100], rel=1e-5)
    assert nre_penalty(TrainConfig(method="bnre", lmbda=100), 1) == pytest.approx(100, rel=1e-5)
    assert nre_penalty(TrainConfig(method="nre", lmbda=100, lambda_warmup=4), 2) == 0
    # validation (no epoch) always uses the full lambda
    assert nre_penalty(config) == pytest.approx(100, rel=1e-5)


def test_config_refuses_unknown_and_invalid_options():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['lamda'\]"):
        TrainConfig.from_dict({"lamda": 1.0})
    with pytest.raises(ValueError, match="lmbda must be >= 0"):
        TrainConfig(lmbda=-1)
    with pytest.raises(ValueError, match="unknown method 'snre'"):
        TrainConfig(method="snre")
    assert nre_penalty(TrainConfig(method="nre", lmbda=100)) == 0.0
    assert nre_penalty(TrainConfig(method="bnre", lmbda=7)) == pytest.approx(7, rel=1e-5)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        TrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="shuffle_block must be >= 1"):
        TrainConfig(shuffle_block=0)
    with pytest.raises(ValueError, match="lambda_warmup must be >= 0"):
        TrainConfig(lambda_warmup=-2)
    with pytest.raises(ValueError, match="memory_limit_mb must be > 0"):
        TrainConfig(memory_limit_mb=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    train, val = pairs("gaussian", "train", 2048), pairs("gaussian", "val", 512)
    config = TrainConfig(method="nre", replicates=2, epochs=10, patience=10, hidden=[32, 32], batch_size=64)
    train_ensemble("gaussian", config, train, val, 1024, out / "m.pt", out / "h.csv", log=lambda _: None)
    return out, config


def test_model_file_holds_members_and_provenance(trained):
    out, config = trained
    task, members, meta = load_ensemble(out / "m.pt", task="gaussian")
    assert task.name == "gaussian" and len(members) == 2
    assert meta["budget"] == 1024 and meta["config"]["lmbda"] == 50  # the default: the paper's weight
    assert meta["member_seeds"] == [member_seed(config.seed, "gaussian", 1024, k) for k in range(2)]
    assert "torch" in meta["libraries"]
    # members differ: own seed, initialisation and training subset
    w0, w1 = (next(m.head.parameters()) for m in members)
    assert not torch.equal(w0, w1)
    with pytest.raises(ValueError, match="model of task 'gaussian', expected 'slcp'"):
        load_ensemble(out / "m.pt", task="slcp")


def test_history_shows_learning(trained):
    out, _ = trained
    history = pd.read_csv(out / "h.csv")
    assert set(history.member) == {0, 1}
    assert {"train_loss", "val_loss", "val_balancing", "lr"} <= set(history.columns)
    for _, h in history.groupby("member"):
        # log 2 is the loss of a constant classifier; the estimator must beat it clearly
        assert h.val_loss.min() < np.log(2) - 0.1
        assert h.val_loss.min() < h.val_loss.iloc[0]


def test_training_is_deterministic(tmp_path):
    train, val = pairs("slcp", "train", 512), pairs("slcp", "val", 256)
    config = TrainConfig(method="nre", replicates=1, epochs=2, hidden=[8], batch_size=64)
    for name in ("a", "b"):
        train_ensemble("slcp", config, train, val, 256, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv", log=lambda _: None)
    a = torch.load(tmp_path / "a.pt", weights_only=True)["members"][0]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["members"][0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_budget_larger_than_pool_is_refused(tmp_path):
    config = TrainConfig(replicates=1, epochs=1, hidden=[4])
    with pytest.raises(ValueError, match="budget 1024 exceeds the training pool of 100"):
        train_ensemble("slcp", config, pairs("slcp", "train", 100), pairs("slcp", "val", 10), 1024, tmp_path / "m.pt", tmp_path / "h.csv")
    assert not (tmp_path / "m.pt").exists()


def test_corrupt_model_file_is_named(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.pt: not a readable model file"):
        load_ensemble(bad)


def test_model_file_of_another_format_is_refused(trained, tmp_path):
    out, _ = trained
    payload = torch.load(out / "m.pt", weights_only=True)
    payload["format"] = 2
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="future.pt: unsupported model file format"):
        load_ensemble(tmp_path / "future.pt")
