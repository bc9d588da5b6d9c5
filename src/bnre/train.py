r"""Training of NRE and BNRE ensembles.

Member :math:`k` of an ensemble for budget :math:`B` draws its own seed from
``SeedSequence(seed, spawn_key=(crc32(task), B, k))``; the seed fixes its
initialisation, its training set (the first :math:`B` pairs of a member-specific
permutation of the training pool) and its shuffling. The seed does not depend on the
method, so NRE and BNRE member :math:`k` share initialisation and data (common random
numbers make the comparison paired).

Optimisation follows the paper: AdamW, ReduceLROnPlateau on the validation loss, early
stopping with patience, and the best-validation weights are kept. The validation loss is
the objective evaluated on the whole validation set at once.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from . import __version__
from .data import Pairs
from .io import atomic_path
from .ensemble import config_fingerprint, fit_ensemble
from .losses import balancing, bnre_loss, marginal_theta
from .nn import RatioEstimator
from .provenance import library_versions
from .sampling import epoch_order, member_subset, position_blocks
from .stream import PairsSource
from .tasks import Task, get_task

METHODS = ("nre", "bnre")
#: Options that change how training runs, never the model it produces (a streamed or
#: resumed training equals the in-memory, uninterrupted one bit for bit).
EXECUTION_OPTIONS = ("checkpoint_seconds", "memory_limit_mb")


@dataclass
class TrainConfig:
    """Hyper-parameters of one ensemble; the defaults are the paper's."""

    method: str = "bnre"
    lmbda: float = 100.0
    replicates: int = 5
    batch_size: int = 128
    epochs: int = 500
    patience: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler_factor: float = 0.5
    scheduler_patience: int = 10
    hidden: list[int] = field(default_factory=lambda: [256] * 6)
    activation: str = "SELU"
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    deterministic: bool = False
    checkpoint_seconds: float = 60.0
    lambda_warmup: int = 0
    shuffle_block: int = 1
    memory_limit_mb: float = 4096.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {METHODS}")
        if self.lmbda < 0:
            raise ValueError(f"lmbda must be >= 0, got {self.lmbda}")
        if self.lambda_warmup < 0:
            raise ValueError(f"lambda_warmup must be >= 0, got {self.lambda_warmup}")
        if self.memory_limit_mb <= 0:
            raise ValueError(f"memory_limit_mb must be > 0, got {self.memory_limit_mb}")
        for name in ("replicates", "batch_size", "epochs", "patience", "shuffle_block"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def penalty(self) -> float:
        r"""The :math:`\lambda` actually used: 0 for NRE."""
        return self.lmbda if self.method == "bnre" else 0.0

    def penalty_at(self, epoch: int) -> float:
        r""":math:`\lambda_e = \lambda \min(1, e / w)` in epoch :math:`e` (1-based) with a linear
        warm-up over :math:`w` = ``lambda_warmup`` epochs (none when 0). Validation, early
        stopping and the scheduler always use the full :math:`\lambda`."""
        if not self.lambda_warmup:
            return self.penalty
        return self.penalty * min(1.0, epoch / self.lambda_warmup)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a mapping, refusing unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def member_seed(seed: int, task: str, budget: int, member: int) -> int:
    """The 63-bit seed of ensemble member ``member``."""
    sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(task.encode()), budget, member))
    return int(sequence.generate_state(2, np.uint64)[0] >> np.uint64(1))


def build_estimator(task: Task, hidden: list[int], activation: str) -> RatioEstimator:
    """The task's default embedding followed by an MLP head."""
    return RatioEstimator(
        task.lower,
        task.upper,
        task.embedding(),
        task.embedding_features(),
        hidden,
        activation,
        task.x_shape,
        task.preprocess(),
    )


def objective(estimator: RatioEstimator, theta: Tensor, x: Tensor, lmbda: float) -> tuple[Tensor, Tensor]:
    """Loss and balancing value of a batch (marginal pairs by rolling ``theta``)."""
    logit_joint, logit_marginal = estimator(theta, x, marginal_theta(theta)).chunk(2, dim=-1)
    return bnre_loss(logit_joint, logit_marginal, lmbda), balancing(logit_joint, logit_marginal)


@torch.no_grad()
def validate(estimator: RatioEstimator, theta: Tensor, x: Tensor, lmbda: float, batch: int = 4096) -> tuple[float, float]:
    """Objective and balancing value over the whole validation set."""
    estimator.eval()
    joint, marginal = [], []
    theta_marginal = marginal_theta(theta)
    for a in range(0, len(theta), batch):
        both = estimator(theta[a : a + batch], x[a : a + batch], theta_marginal[a : a + batch])
        joint.append(both[: len(both) // 2])
        marginal.append(both[len(both) // 2 :])
    estimator.train()
    lj, lm = torch.cat(joint), torch.cat(marginal)
    return float(bnre_loss(lj, lm, lmbda)), float(balancing(lj, lm))


Log = Callable[[str], None]


def train_member(
    task: Task,
    config: TrainConfig,
    train: Pairs,
    val: Pairs,
    budget: int,
    member: int,
    log: Log = print,
) -> tuple[dict, list[dict]]:
    """Train one member with a plain loop and torch's optimisers.

    The reference implementation of :func:`bnre.ensemble.fit_ensemble`, which trains
    several members at once and must agree with it. Returns the member's best state
    dict and its per-epoch history.
    """
    seed = member_seed(config.seed, task.name, budget, member)
    subset = member_subset(seed, len(train), budget, config.shuffle_block)
    groups = position_blocks(subset, config.shuffle_block)
    theta = torch.as_tensor(train.theta[subset])
    x = torch.as_tensor(train.x[subset])
    theta_val, x_val = torch.as_tensor(val.theta), torch.as_tensor(val.x)

    torch.manual_seed(seed)
    estimator = build_estimator(task, config.hidden, config.activation)
    estimator.set_standardisation(x)
    optimizer = torch.optim.AdamW(estimator.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.scheduler_factor, patience=config.scheduler_patience
    )
    lmbda = config.penalty
    best_loss, best_state, best_epoch = math.inf, copy.deepcopy(estimator.state_dict()), 0
    history: list[dict] = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        order = epoch_order(seed, epoch, budget, groups=groups)
        lmbda_epoch = config.penalty_at(epoch)
        losses = []
        for a in range(0, budget, config.batch_size):
            index = order[a : a + config.batch_size]
            if len(index) < 2:
                continue
            loss, _ = objective(estimator, theta[index], x[index], lmbda_epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        train_loss = float(torch.stack(losses).mean())
        val_loss, val_balancing = validate(estimator, theta_val, x_val, lmbda)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(estimator.state_dict())
        history.append(
            dict(
                member=member,
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val_loss,
                val_balancing=val_balancing,
                lr=lr,
                seconds=time.perf_counter() - start,
            )
        )
        log(
            f"member {member} epoch {epoch:4d} train {train_loss:.4f} val {val_loss:.4f} "
            f"balancing {val_balancing:.3f} lr {lr:.1e} best {best_epoch}"
        )
        if epoch - best_epoch >= config.patience:
            log(f"member {member}: early stop at epoch {epoch}, best epoch {best_epoch}")
            break
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"member {member}: non-finite training loss at epoch {epoch}")
    return best_state, history


def train_ensemble(
    task_name: str,
    config: TrainConfig,
    train: PairsSource,
    val: PairsSource,
    budget: int,
    model_path: str | os.PathLike,
    history_path: str | os.PathLike,
    log: Log = print,
    checkpoint_path: str | os.PathLike | None = None,
    provenance: dict | None = None,
) -> None:
    """Train ``config.replicates`` members together; write the model file and history CSV.

    With ``checkpoint_path``, training state is saved there periodically and on SIGTERM
    (then :class:`bnre.ensemble.Interrupted` is raised), a later call resumes from it,
    and it is removed once the model file is written.
    """
    task = get_task(task_name)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    seeds = [member_seed(config.seed, task_name, budget, k) for k in range(config.replicates)]
    subsets = [member_subset(seed, len(train), budget, config.shuffle_block) for seed in seeds]
    estimators = []
    for seed in seeds:
        torch.manual_seed(seed)
        estimators.append(build_estimator(task, config.hidden, config.activation))
    # options that do not change the result may change between a checkpoint and its resumption
    result_options = {k: v for k, v in dataclasses.asdict(config).items() if k not in EXECUTION_OPTIONS}
    fingerprint = config_fingerprint(
        {"task": task_name, "budget": budget, "config": result_options, "n_train": len(train), "n_val": len(val)}
    )
    states, history = fit_ensemble(
        task, estimators, seeds, subsets, train, val, config, checkpoint_path, fingerprint, log
    )
    rows = sorted(history, key=lambda r: (r["member"], r["epoch"]))
    with atomic_path(history_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    payload = {
        "format": 1,
        "task": task_name,
        "budget": budget,
        "config": dataclasses.asdict(config),
        "member_seeds": seeds,
        "members": states,
        "version": __version__,
        "libraries": library_versions(),
        "provenance": provenance or {},
    }
    with atomic_path(model_path) as tmp:
        torch.save(payload, tmp)
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)


def load_ensemble(path: str | os.PathLike, task: str | None = None) -> tuple[Task, list[RatioEstimator], dict]:
    """Load a model file; return its task, its members (in eval mode) and its metadata."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable model file ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != 1:
        raise ValueError(f"{path}: unsupported model file format")
    if task is not None and payload["task"] != task:
        raise ValueError(f"{path}: model of task {payload['task']!r}, expected {task!r}")
    the_task = get_task(payload["task"])
    config = payload["config"]
    members = []
    for state in payload["members"]:
        estimator = build_estimator(the_task, config["hidden"], config["activation"])
        estimator.load_state_dict(state)
        members.append(estimator.eval())
    return the_task, members, payload
