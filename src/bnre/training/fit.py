r"""The training loop of an ensemble's :math:`K` members, trained together.

Each member keeps its own initialisation, training subset, shuffling, learning-rate
schedule and early stopping, so the result equals :math:`K` independent runs of a plain
single-member loop (up to float rounding; ``tests/reference_trainer.py`` is that loop).
Batches are a deterministic function of (member seed, epoch), so a run resumed from its
checkpoint (:mod:`bnre.training.checkpoint`) equals an uninterrupted one.
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

from ..devices import pick_device
from ..methods import get_method
from ..methods.config import TrainConfig
from ..methods.losses import balancing
from ..nets.estimators import ConditionalEstimator
from ..nets.logits import Logits
from ..sampling import epoch_order, position_blocks
from ..tasks import Task
from .checkpoint import Checkpointer, Interrupted
from .progress import Progress
from .stacked import StackedEnsemble
from .stream import PairsSource, TrainingRows, ValidationPairs

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
    diagnostics: "PenaltyDiagnostics | None" = None


class PenaltyDiagnostics:
    r"""What slows a penalised method, per member over one epoch.

    With :math:`v_b` the balancing violation of batch :math:`b`, the expected batch penalty
    :math:`\lambda \mathbb{E}[v_b^2]` is :math:`\lambda \bar v^2` (``penalty_violation``,
    :math:`\bar v` the epoch's mean violation, a running estimate of the training set's)
    plus :math:`\lambda \mathbb{V}[v_b]` (``penalty_variance``, of order :math:`1/B`).
    ``grad_norm_bce`` and ``grad_norm_penalty`` are the norms of the cross-entropy's and of
    the weighted penalty's gradients at the epoch's last batch.
    """

    def __init__(self, k: int):
        self.n, self.sum, self.squares = 0, torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
        self.weight = 0.0
        #: gradient norms of the cross-entropy and of the penalty, (K,) each
        self.norms = [torch.full((k,), math.nan, dtype=torch.float64)] * 2

    @torch.no_grad()
    def add(self, logits: Logits, weight: float) -> None:
        """Count a batch's balancing violation (K,); ``weight`` is the penalty's in this epoch."""
        v = (balancing(logits.joint, logits.marginal) - 1).double()
        if self.sum.device != v.device:
            self.sum, self.squares = self.sum.to(v.device), self.squares.to(v.device)
        self.n, self.weight = self.n + 1, weight
        self.sum += v
        self.squares += v * v

    def row(self, i: int) -> dict:
        mean = float(self.sum[i]) / max(self.n, 1)
        variance = max(float(self.squares[i]) / max(self.n, 1) - mean * mean, 0.0)
        return dict(lmbda=self.weight, train_violation=mean, penalty_violation=self.weight * mean * mean,
                    penalty_variance=self.weight * variance, grad_norm_bce=float(self.norms[0][i]),
                    grad_norm_penalty=float(self.norms[1][i]))

    def state_dict(self) -> dict:
        return {"n": self.n, "sum": self.sum.cpu(), "squares": self.squares.cpu(), "weight": self.weight,
                "norms": self.norms}

    @classmethod
    def from_state(cls, state: dict) -> "PenaltyDiagnostics":
        out = cls(len(state["sum"]))
        out.n, out.sum, out.squares, out.weight, out.norms = (
            state["n"], state["sum"], state["squares"], state["weight"], state["norms"])
        return out


def steps_per_epoch(budget: int, batch_size: int) -> int:
    """Batches per epoch; a last batch of one pair (which has no marginal partner) is dropped."""
    steps = math.ceil(budget / batch_size)
    return steps - 1 if budget - (steps - 1) * batch_size < 2 else steps


def fit_ensemble(
    task: Task,
    estimators: list[ConditionalEstimator],
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
    method, device, budget = get_method(config, task), pick_device(config.device), len(subsets[0])
    limit = config.memory_limit_mb * 2**20
    rows = TrainingRows(train, subsets, config.shuffle_block, limit, device, log, config.batch_size)
    for k, estimator in enumerate(estimators):
        method.standardise(estimator, rows.member_chunks(k))
    groups = [position_blocks(subset, config.shuffle_block) for subset in subsets]
    validation_batch = config.batch_size if config.validation_loss == "batches" else None
    validation = ValidationPairs(val, limit, device, marginal=method.validation_partners)
    ensemble = StackedEnsemble(estimators, config, device)
    at = Position(running=torch.zeros(len(estimators), dtype=torch.float64, device=device),
                  diagnostics=PenaltyDiagnostics(len(estimators)))
    checkpointer = Checkpointer(checkpoint, fingerprint, config.checkpoint_seconds, log)
    if (saved := checkpointer.load()) is not None:
        ensemble.load_state_dict(saved["ensemble"])
        at = Position(saved["epoch"], saved["step"], saved["running"].to(device), saved["history"], saved["elapsed"],
                      PenaltyDiagnostics.from_state(saved["diagnostics"]))
        log(f"resumed from {checkpoint} at epoch {at.epoch}, step {at.step}, members {ensemble.active}")
    started = time.perf_counter()

    def state() -> dict:
        elapsed = at.elapsed + time.perf_counter() - started
        return dict(epoch=at.epoch, step=at.step, running=at.running.cpu(), history=at.history, elapsed=elapsed,
                    ensemble=ensemble.state_dict(), diagnostics=at.diagnostics.state_dict())

    steps = steps_per_epoch(budget, config.batch_size)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp)
    with checkpointer, Progress(config.epochs, steps) as progress:
        while ensemble.active and at.epoch <= config.epochs:
            epoch_start = time.perf_counter()
            active = torch.tensor(ensemble.active)
            local, local_cpu = rows.local[active.to(device)], rows.local_cpu[active]  # (K, budget) union rows
            orders_cpu = torch.stack([epoch_order(seeds[m], at.epoch, budget, groups=groups[m]) for m in ensemble.active])
            orders = orders_cpu.to(device)  # (K, budget) positions in each member's subset
            permutations = method.permutations(seeds, ensemble.active, at.epoch, budget, device)
            while at.step < steps:
                window = slice(at.step * config.batch_size, (at.step + 1) * config.batch_size)
                index = torch.gather(local, 1, orders[:, window])
                index_cpu = torch.gather(local_cpu, 1, orders_cpu[:, window]) if rows.streamed else None
                theta, x = rows.theta(index), rows.x(index, index_cpu)
                permutation = None if permutations is None else permutations[at.step]
                draws = method.draws(seeds, ensemble.active, at.epoch, at.step, theta.shape[1], device)
                with autocast:
                    logits = method.logits(ensemble.forward, theta, x, permutation, draws)
                logits = logits.map(Tensor.float)
                loss = method.loss(logits, at.epoch)  # (K,)
                at.diagnostics.add(logits, method.penalty_weight(at.epoch))
                if at.step == steps - 1:  # the epoch's last batch: gradient norms of both terms
                    norms = ensemble.step(loss, method.penalty(logits, at.epoch))
                    at.diagnostics.norms = [norms[1], norms[0]]
                else:
                    ensemble.step(loss)
                at.running += loss.detach().double()
                at.step += 1
                checkpointer.interrupt(state, f"epoch {at.epoch}, step {at.step}")
                progress.update(at.epoch, at.step, lambda: float(at.running.mean()) / at.step)
            train_loss = at.running.cpu() / steps
            val_loss, val_balancing = ensemble.validate(validation, method, validation_batch)
            lr_used = ensemble.optimizer.lr.clone()
            ensemble.record(at.epoch, val_loss)
            patience = config.patience if config.early_stopping else None
            stop = end_of_epoch(ensemble, at, train_loss, val_loss, val_balancing, lr_used,
                                time.perf_counter() - epoch_start, patience, log)
            ensemble.drop(stop)
            at.epoch, at.step = at.epoch + 1, 0
            at.running = torch.zeros(len(ensemble.active), dtype=torch.float64, device=device)
            at.diagnostics = PenaltyDiagnostics(len(ensemble.active))
            checkpointer.save_if_due(state)
    for row in at.history:  # whether the member kept this epoch's weights
        row["kept"] = row["epoch"] == ensemble.kept_epoch[row["member"]]
    return ensemble.kept_states, at.history


def end_of_epoch(
    ensemble: StackedEnsemble,
    at: Position,
    train_loss: Tensor,
    val_loss: Tensor,
    val_balancing: Tensor,
    lr: Tensor,
    seconds: float,
    patience: int | None,
    log: Log,
) -> list[int]:
    """Append the epoch's history rows and log them; return the stack positions of the
    members that stop: those ``patience`` epochs past their best validation loss (none
    without ``patience``)."""
    stop = []
    for i, member in enumerate(ensemble.active):
        if not math.isfinite(float(train_loss[i])):
            raise FloatingPointError(f"member {member}: non-finite training loss at epoch {at.epoch}")
        at.history.append(
            dict(member=member, epoch=at.epoch, train_loss=float(train_loss[i]), val_loss=float(val_loss[i]),
                 val_balancing=float(val_balancing[i]), lr=float(lr[i]), seconds=seconds, **at.diagnostics.row(i))
        )
        if patience is not None and at.epoch - ensemble.best_epoch[member] >= patience:
            stop.append(i)
            log(f"member {member}: early stop at epoch {at.epoch}, best epoch {ensemble.best_epoch[member]}")
    log(
        f"epoch {at.epoch:4d} " + " ".join(
            f"[{m}] train {float(train_loss[i]):.4f} val {float(val_loss[i]):.4f} bal {float(val_balancing[i]):.3f}"
            for i, m in enumerate(ensemble.active)
        ) + f" ({seconds:.1f}s)"
    )
    return stop
