"""The reference single-member trainer: a plain loop with torch's own optimisers.

The stacked trainer (:func:`bnre.training.fit.fit_ensemble`) trains several members at once
and must agree with this loop, member by member (``tests/test_ensemble.py``).
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import Tensor

from bnre.methods import Method, get_method
from bnre.methods.config import TrainConfig
from bnre.methods.losses import balancing
from bnre.sampling import epoch_order, marginal_permutations, member_seed, member_subset, position_blocks
from bnre.simulation.pairs import Pairs
from bnre.tasks import Task


@torch.no_grad()
def validate(method: Method, estimator, theta: Tensor, x: Tensor, config: TrainConfig) -> tuple[float, float]:
    """Objective and balancing value over the validation set: on the whole set, or the mean
    of the objective over its batches (``validation_loss="batches"``)."""
    estimator.eval()
    logits = method.validation_logits(estimator, theta, x, method.validation_partners(theta))
    estimator.train()
    value = float(balancing(logits.joint, logits.marginal))
    if config.validation_loss == "set":
        return float(method.loss(logits)), value
    b = config.batch_size
    losses = [float(method.loss(logits.map(lambda t: t[a : a + b]))) for a in range(0, len(theta), b) if len(theta) - a >= 2]
    return sum(losses) / len(losses), value


def gradient_norm(estimator, loss: Tensor) -> float:
    if not loss.requires_grad:
        return 0.0
    grads = torch.autograd.grad(loss, list(estimator.parameters()), retain_graph=True, allow_unused=True)
    return float(sum(g.double().square().sum() for g in grads if g is not None).sqrt())


def train_member(
    task: Task, config: TrainConfig, train: Pairs, val: Pairs, budget: int, member: int
) -> tuple[dict, list[dict]]:
    """Train member ``member`` alone; return its best state dict and its per-epoch history."""
    method = get_method(config, task)
    seed = member_seed(config.seed, task.name, budget, member)
    subset = member_subset(seed, len(train), budget, config.shuffle_block)
    groups = position_blocks(subset, config.shuffle_block)
    theta = torch.as_tensor(train.theta[subset])
    x = torch.as_tensor(train.x[subset])
    theta_val, x_val = torch.as_tensor(val.theta), torch.as_tensor(val.x)

    torch.manual_seed(seed)
    estimator = method.estimator(task)
    if config.normalise == "train":
        estimator.set_standardisation(x)
    optimizer = torch.optim.AdamW(estimator.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.scheduler_factor, patience=config.scheduler_patience, min_lr=config.scheduler_min_lr
    )
    best_loss, best_state, best_epoch = math.inf, copy.deepcopy(estimator.state_dict()), 0
    history: list[dict] = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        order = epoch_order(seed, epoch, budget, groups=groups)
        permutations = marginal_permutations(seed, epoch, budget, config.batch_size)
        losses, violations, norms = [], [], (math.nan, math.nan)
        for step, a in enumerate(range(0, budget, config.batch_size)):
            index = order[a : a + config.batch_size]
            if len(index) < 2:
                continue
            permutation = permutations[step] if config.marginals == "permute" else None
            draws = method.draws({member: seed}, [member], epoch, step, len(index), "cpu")
            logits = method.logits(estimator, theta[index], x[index], permutation, None if draws is None else draws[0])
            loss = method.loss(logits, epoch)
            violations.append(float(balancing(logits.joint, logits.marginal).detach()) - 1)
            if a + config.batch_size >= budget - 1:  # the epoch's last batch
                norms = (gradient_norm(estimator, method.cross_entropy(logits)),
                         gradient_norm(estimator, method.penalty(logits, epoch)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        train_loss = float(torch.stack(losses).mean())
        val_loss, val_balancing = validate(method, estimator, theta_val, x_val, config)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(estimator.state_dict())
        if config.keep == "last":
            kept_state = copy.deepcopy(estimator.state_dict())
        weight = method.penalty_weight(epoch)
        mean = sum(violations) / len(violations)
        variance = sum(v * v for v in violations) / len(violations) - mean * mean
        history.append(
            dict(member=member, epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                 val_balancing=val_balancing, lr=lr, seconds=time.perf_counter() - start,
                 penalty_violation=weight * mean * mean, penalty_variance=weight * variance,
                 grad_norm_bce=norms[0], grad_norm_penalty=norms[1])
        )
        if config.early_stopping and epoch - best_epoch >= config.patience:
            break
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"member {member}: non-finite training loss at epoch {epoch}")
    return (kept_state if config.keep == "last" else best_state), history
