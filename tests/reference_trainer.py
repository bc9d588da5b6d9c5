"""The reference single-member trainer: a plain loop with torch's own optimisers.

The stacked trainer (:func:`bnre.trainer.fit_ensemble`) trains several members at once
and must agree with this loop, member by member (``tests/test_ensemble.py``).
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import Tensor

from bnre.config import TrainConfig
from bnre.data import Pairs
from bnre.methods import Method, get_method
from bnre.sampling import epoch_order, member_seed, member_subset, position_blocks
from bnre.tasks import Task


@torch.no_grad()
def validate(method: Method, estimator, theta: Tensor, x: Tensor, batch: int = 4096) -> tuple[float, float]:
    """Objective and balancing value over the whole validation set."""
    from bnre.losses import Logits, balancing

    estimator.eval()
    joint, marginal = [], []
    theta_marginal = method.marginal_theta(theta)
    for a in range(0, len(theta), batch):
        logits = estimator(theta[a : a + batch], x[a : a + batch], theta_marginal[a : a + batch])
        joint.append(logits.joint)
        marginal.append(logits.marginal)
    estimator.train()
    logits = Logits(torch.cat(joint), torch.cat(marginal))
    return float(method.loss(logits)), float(balancing(logits.joint, logits.marginal))


def train_member(
    task: Task, config: TrainConfig, train: Pairs, val: Pairs, budget: int, member: int
) -> tuple[dict, list[dict]]:
    """Train member ``member`` alone; return its best state dict and its per-epoch history."""
    method = get_method(config)
    seed = member_seed(config.seed, task.name, budget, member)
    subset = member_subset(seed, len(train), budget, config.shuffle_block)
    groups = position_blocks(subset, config.shuffle_block)
    theta = torch.as_tensor(train.theta[subset])
    x = torch.as_tensor(train.x[subset])
    theta_val, x_val = torch.as_tensor(val.theta), torch.as_tensor(val.x)

    torch.manual_seed(seed)
    estimator = method.estimator(task)
    estimator.set_standardisation(x)
    optimizer = torch.optim.AdamW(estimator.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.scheduler_factor, patience=config.scheduler_patience
    )
    best_loss, best_state, best_epoch = math.inf, copy.deepcopy(estimator.state_dict()), 0
    history: list[dict] = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        order = epoch_order(seed, epoch, budget, groups=groups)
        losses = []
        for a in range(0, budget, config.batch_size):
            index = order[a : a + config.batch_size]
            if len(index) < 2:
                continue
            loss = method.loss(method.logits(estimator, theta[index], x[index]), epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        train_loss = float(torch.stack(losses).mean())
        val_loss, val_balancing = validate(method, estimator, theta_val, x_val)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(estimator.state_dict())
        history.append(
            dict(member=member, epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                 val_balancing=val_balancing, lr=lr, seconds=time.perf_counter() - start)
        )
        if epoch - best_epoch >= config.patience:
            break
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"member {member}: non-finite training loss at epoch {epoch}")
    return best_state, history
