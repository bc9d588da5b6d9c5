r"""The training loop of an ensemble's :math:`K` members, trained together.

Each member keeps its own initialisation, training subset, shuffling, learning-rate
schedule and early stopping, so the result equals :math:`K` independent runs of a plain
single-member loop (up to float rounding; ``tests/reference_trainer.py`` is that loop).
Batches are a deterministic function of (member seed, epoch), so a run resumed from its
checkpoint (:mod:`bnre.checkpoint`) equals an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .checkpoint import Checkpointer, Interrupted
from .config import TrainConfig
from .devices import pick_device
from .losses import Logits
from .methods import get_method
from .nn import RatioEstimator
from .progress import Progress
from .sampling import epoch_order, position_blocks
from .stacked import StackedEnsemble
from .stream import PairsSource, TrainingRows, ValidationPairs
from .tasks import Task

__all__ = ["Interrupted", "fit_ensemble", "steps_per_epoch"]

Log = Callable[[str], None]


@dataclass
class Position:
    """Where the loop is: epoch (1-based), step within it, the members' summed batch
    losses this epoch, the history so far and the seconds spent before a resumption."""

    epoch: int = 1
    step: int = 0
    running: Tensor | None = None
    history: list[dict] = field(default_factory=list)
    elapsed: float = 0.0


def steps_per_epoch(budget: int, batch_size: int) -> int:
    """Batches per epoch; a last batch of one pair (which has no marginal partner) is dropped."""
    steps = math.ceil(budget / batch_size)
    return steps - 1 if budget - (steps - 1) * batch_size < 2 else steps


def fit_ensemble(
    task: Task,
    estimators: list[RatioEstimator],
    seeds: list[int],
    subsets: list[np.ndarray],
    train: PairsSource,
    val: PairsSource,
    config: TrainConfig,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
    log: Log = print,
) -> tuple[list[dict], list[dict]]:
    """Train stacked members; return their best state dicts and the per-epoch history.

    ``estimators[k]`` is member k freshly initialised, ``subsets[k]`` its training
    indices into ``train`` (sorted), ``seeds[k]`` the seed of its shuffling.
    """
    method, device, budget = get_method(config), pick_device(config.device), len(subsets[0])
    limit = config.memory_limit_mb * 2**20
    rows = TrainingRows(train, subsets, config.shuffle_block, limit, device, log, config.batch_size)
    for k, estimator in enumerate(estimators):
        estimator.set_standardisation(rows.member_chunks(k))
    groups = [position_blocks(subset, config.shuffle_block) for subset in subsets]
    validation = ValidationPairs(val, limit, device, marginal=method.marginal_theta)
    ensemble = StackedEnsemble(estimators, config, device)
    at = Position(running=torch.zeros(len(estimators), dtype=torch.float64, device=device))
    checkpointer = Checkpointer(checkpoint, fingerprint, config.checkpoint_seconds, log)
    if (saved := checkpointer.load()) is not None:
        ensemble.load_state_dict(saved["ensemble"])
        at = Position(saved["epoch"], saved["step"], saved["running"].to(device), saved["history"], saved["elapsed"])
        log(f"resumed from {checkpoint} at epoch {at.epoch}, step {at.step}, members {ensemble.active}")
    started = time.perf_counter()

    def state() -> dict:
        elapsed = at.elapsed + time.perf_counter() - started
        return dict(epoch=at.epoch, step=at.step, running=at.running.cpu(), history=at.history, elapsed=elapsed,
                    ensemble=ensemble.state_dict())

    steps = steps_per_epoch(budget, config.batch_size)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp)
    with checkpointer, Progress(config.epochs, steps) as progress:
        while ensemble.active and at.epoch <= config.epochs:
            epoch_start = time.perf_counter()
            active = torch.tensor(ensemble.active)
            local, local_cpu = rows.local[active.to(device)], rows.local_cpu[active]  # (K, budget) union rows
            orders_cpu = torch.stack([epoch_order(seeds[m], at.epoch, budget, groups=groups[m]) for m in ensemble.active])
            orders = orders_cpu.to(device)  # (K, budget) positions in each member's subset
            while at.step < steps:
                window = slice(at.step * config.batch_size, (at.step + 1) * config.batch_size)
                index = torch.gather(local, 1, orders[:, window])
                index_cpu = torch.gather(local_cpu, 1, orders_cpu[:, window]) if rows.streamed else None
                theta, x = rows.theta(index), rows.x(index, index_cpu)
                with autocast:
                    logits = method.logits(ensemble.forward, theta, x)
                loss = method.loss(Logits(logits.joint.float(), logits.marginal.float()), at.epoch)  # (K,)
                ensemble.step(loss)
                at.running += loss.detach().double()
                at.step += 1
                checkpointer.interrupt(state, f"epoch {at.epoch}, step {at.step}")
                progress.update(at.epoch, at.step, lambda: float(at.running.mean()) / at.step)
            train_loss = at.running.cpu() / steps
            val_loss, val_balancing = ensemble.validate(validation, method)
            lr_used = ensemble.optimizer.lr.clone()
            ensemble.record(at.epoch, val_loss)
            stop = end_of_epoch(ensemble, at, train_loss, val_loss, val_balancing, lr_used,
                                time.perf_counter() - epoch_start, config.patience, log)
            ensemble.drop(stop)
            at.epoch, at.step = at.epoch + 1, 0
            at.running = torch.zeros(len(ensemble.active), dtype=torch.float64, device=device)
            checkpointer.save_if_due(state)
    return ensemble.best_states, at.history


def end_of_epoch(
    ensemble: StackedEnsemble,
    at: Position,
    train_loss: Tensor,
    val_loss: Tensor,
    val_balancing: Tensor,
    lr: Tensor,
    seconds: float,
    patience: int,
    log: Log,
) -> list[int]:
    """Append the epoch's history rows and log them; return the stack positions of the
    members that stop: those ``patience`` epochs past their best validation loss."""
    stop = []
    for i, member in enumerate(ensemble.active):
        if not math.isfinite(float(train_loss[i])):
            raise FloatingPointError(f"member {member}: non-finite training loss at epoch {at.epoch}")
        at.history.append(
            dict(member=member, epoch=at.epoch, train_loss=float(train_loss[i]), val_loss=float(val_loss[i]),
                 val_balancing=float(val_balancing[i]), lr=float(lr[i]), seconds=seconds)
        )
        if at.epoch - ensemble.best_epoch[member] >= patience:
            stop.append(i)
            log(f"member {member}: early stop at epoch {at.epoch}, best epoch {ensemble.best_epoch[member]}")
    log(
        f"epoch {at.epoch:4d} " + " ".join(
            f"[{m}] train {float(train_loss[i]):.4f} val {float(val_loss[i]):.4f} bal {float(val_balancing[i]):.3f}"
            for i, m in enumerate(ensemble.active)
        ) + f" ({seconds:.1f}s)"
    )
    return stop
