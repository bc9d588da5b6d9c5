r"""Vectorised training of the :math:`K` members of an ensemble in one process.

The members' parameters are stacked along a leading dimension
(:func:`torch.func.stack_module_state`) and one forward pass evaluates every member on its
own batch with :func:`torch.func.vmap`. Each member keeps its own initialisation, training
subset, shuffling, learning rate schedule and early stopping, so the result equals
:math:`K` independent runs of :func:`bnre.train.train_member` (up to float rounding).

The summed loss :math:`\sum_k \mathcal{L}_k(\phi_k)` has gradient
:math:`\nabla_{\phi_k} \mathcal{L}_k` for member :math:`k`; :class:`StackedAdamW` applies
AdamW with one learning rate per member, and :class:`StackedPlateau` is
ReduceLROnPlateau per member. Members that stop early are removed from the stack.

Training state is checkpointed atomically (every ``checkpoint_seconds`` and on SIGTERM,
mid-epoch if needed); a restarted job resumes from it. Batches are a deterministic
function of (member seed, epoch), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from .io import atomic_path
from .losses import balancing, bnre_loss
from .nn import RatioEstimator
from .progress import Progress
from .sampling import epoch_order, position_blocks
from .stream import PairsSource, TrainingRows, ValidationPairs
from .tasks import Task

Log = Callable[[str], None]


class StackedAdamW:
    r"""AdamW on stacked parameters (K, ...) with a learning rate per member.

    Per member, with :math:`t` the step count:
    :math:`\phi \leftarrow \phi(1 - \eta w)`, :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
    :math:`\phi \leftarrow \phi - \eta \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}`.
    The update is torch's fused AdamW kernel (the one of ``AdamW(fused=True)``), applied
    once to the whole stacks when all members share a learning rate, else once per
    distinct rate on the members' slices.
    """

    def __init__(
        self,
        params: list[Tensor],
        lr: Tensor,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = params
        self.lr = lr  # (K,), float64
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self._steps = torch.zeros((), device=params[0].device)

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        grads = [p.grad for p in self.params]
        steps = self._steps.fill_(float(self.step_count))
        rates = self.lr.tolist()
        if len(set(rates)) == 1:
            groups = [(rates[0], None)]
        else:
            groups = [(rate, [k for k, r in enumerate(rates) if r == rate]) for rate in sorted(set(rates))]
        for rate, rows in groups:
            if rows is None:
                tensors = (self.params, grads, self.m, self.v)
            else:
                tensors = tuple([t[k] for t in group for k in rows] for group in (self.params, grads, self.m, self.v))
            torch._fused_adamw_(
                *tensors,
                [],
                [steps] * len(tensors[0]),
                lr=rate,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=self.weight_decay,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def select(self, keep: Tensor) -> None:
        """Keep only the members ``keep`` (indices into the stack)."""
        self.lr = self.lr[keep.to(self.lr.device)]
        self.m = [m[keep] for m in self.m]
        self.v = [v[keep] for v in self.v]

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step_count": self.step_count, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"]
        self.step_count = state["step_count"]
        self.m, self.v = state["m"], state["v"]


class StackedPlateau:
    """ReduceLROnPlateau (mode min, relative threshold) for each member's learning rate."""

    def __init__(self, k: int, factor: float, patience: int, threshold: float = 1e-4, eps: float = 1e-8):
        self.factor, self.patience, self.threshold, self.eps = factor, patience, threshold, eps
        self.best = torch.full((k,), math.inf, dtype=torch.float64)
        self.bad_epochs = torch.zeros(k, dtype=torch.long)

    def step(self, loss: Tensor, lr: Tensor) -> Tensor:
        """Update with validation losses (K,); return the new learning rates."""
        better = loss < self.best * (1 - self.threshold)
        self.best = torch.where(better, loss, self.best)
        self.bad_epochs = torch.where(better, 0, self.bad_epochs + 1)
        reduce = self.bad_epochs > self.patience
        new_lr = lr * self.factor
        reduce &= (lr - new_lr) > self.eps
        self.bad_epochs = torch.where(reduce, 0, self.bad_epochs)
        return torch.where(reduce, new_lr, lr)

    def select(self, keep: Tensor) -> None:
        self.best, self.bad_epochs = self.best[keep.cpu()], self.bad_epochs[keep.cpu()]

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class StackedMLP:
    r"""Fast path for estimators without a learned embedding: the head as batched matmuls.

    With weights stored as (K, in, out), layer :math:`l` is
    ``h = act(bmm(h, W_l) + b_l)``; this avoids the transposed batched matmul that
    ``vmap`` over :class:`torch.nn.Linear` produces, which is slow on CPU.
    """

    def __init__(self, estimator: RatioEstimator):
        self.preprocess = estimator.preprocess
        self.linears = [f"head.{i}" for i, m in enumerate(estimator.head) if isinstance(m, nn.Linear)]
        activations = [m for m in estimator.head if not isinstance(m, nn.Linear)]
        self.activation = activations[0] if activations else nn.Identity()

    @staticmethod
    def applies(estimator: RatioEstimator) -> bool:
        plain = isinstance(estimator.embedding, nn.Flatten) and not any(
            True for _ in estimator.preprocess.parameters()
        )
        return plain and all(isinstance(m, nn.Linear) or not any(True for _ in m.parameters()) for m in estimator.head)

    def to_fast(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        out = dict(params)
        for name in self.linears:
            out[f"{name}.weight"] = params[f"{name}.weight"].detach().transpose(1, 2).contiguous().requires_grad_()
            out[f"{name}.bias"] = params[f"{name}.bias"].detach()[:, None, :].contiguous().requires_grad_()
        return out

    def member(self, params: dict[str, Tensor], i: int) -> dict[str, Tensor]:
        """Row ``i`` of the stack in :class:`torch.nn.Linear`'s layout."""
        out = {n: t[i].detach() for n, t in params.items()}
        for name in self.linears:
            out[f"{name}.weight"] = out[f"{name}.weight"].transpose(0, 1).contiguous()
            out[f"{name}.bias"] = out[f"{name}.bias"][0]
        return out

    def __call__(self, params: dict, buffers: dict, theta: Tensor, x: Tensor, theta_marginal: Tensor) -> Tensor:
        """Logits (K, 2B) of the joint pairs (theta, x) then the marginal pairs (theta', x)."""
        theta = torch.cat([theta, theta_marginal], dim=1)
        x = torch.cat([x, x], dim=1)
        theta = (theta - buffers["theta_shift"][:, None]) / buffers["theta_scale"][:, None]
        x = (self.preprocess(x) - buffers["x_mean"][:, None]) / buffers["x_std"][:, None]
        h = torch.cat([theta, x.flatten(2)], dim=-1)
        last = len(self.linears) - 1
        for i, name in enumerate(self.linears):
            h = torch.bmm(h, params[f"{name}.weight"]) + params[f"{name}.bias"]
            if i < last:
                h = self.activation(h)
        return h.squeeze(-1)


class Interrupted(Exception):
    """Raised after a checkpoint was written in response to SIGTERM."""


def config_fingerprint(payload: dict) -> str:
    """A short hash identifying a training run (config, data, budget)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return device


def fit_ensemble(
    task: Task,
    estimators: list[RatioEstimator],
    seeds: list[int],
    subsets: list[np.ndarray],
    train: PairsSource,
    val: PairsSource,
    config,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
    log: Log = print,
) -> tuple[list[dict], list[dict]]:
    """Train stacked members; return their best state dicts and the per-epoch history.

    ``estimators[k]`` is member k freshly initialised, ``subsets[k]`` its training
    indices into ``train`` (sorted), ``seeds[k]`` the seed of its shuffling.
    """
    device = pick_device(config.device)
    k_total = len(estimators)
    budget = len(subsets[0])
    memory_limit = config.memory_limit_mb * 2**20
    rows = TrainingRows(train, subsets, config.shuffle_block, memory_limit, device, log, config.batch_size)
    for k, estimator in enumerate(estimators):
        estimator.set_standardisation(rows.member_chunks(k))
    subset_index, subset_index_cpu = rows.local, rows.local_cpu  # (K, budget) union rows
    groups = [position_blocks(subset, config.shuffle_block) for subset in subsets]
    validation = ValidationPairs(val, memory_limit, device)

    base = copy.deepcopy(estimators[0]).to("meta")
    params, buffers = stack_module_state([e.to(device) for e in estimators])
    lmbda = config.penalty

    if StackedMLP.applies(estimators[0]):
        fast = StackedMLP(estimators[0])
        params = fast.to_fast(params)
        batched = fast
        unstack = fast.member
    else:

        def forward(p: dict, b: dict, theta: Tensor, x: Tensor, theta_marginal: Tensor) -> Tensor:
            # RatioEstimator.forward embeds x once for the joint and the marginal pairs
            return functional_call(base, (p, b), (theta, x, theta_marginal))

        batched = vmap(forward)

        def unstack(p: dict, i: int) -> dict:
            return {n: t[i].detach() for n, t in p.items()}
    optimizer = StackedAdamW(
        list(params.values()),
        torch.full((k_total,), config.lr, dtype=torch.float64),
        weight_decay=config.weight_decay,
    )
    scheduler = StackedPlateau(k_total, config.scheduler_factor, config.scheduler_patience)
    active = list(range(k_total))  # member ids in stack order
    best_loss = [math.inf] * k_total
    best_epoch = [0] * k_total
    best_states: list[dict] = [{} for _ in range(k_total)]
    history: list[dict] = []
    epoch, step = 1, 0
    running = torch.zeros(k_total, dtype=torch.float64, device=device)
    elapsed_before = 0.0

    def member_state(i: int) -> dict:
        """State dict of stack row ``i`` as a plain RatioEstimator's."""
        state = {n: t.cpu().clone() for n, t in unstack(params, i).items()}
        state.update({n: t[i].detach().cpu().clone() for n, t in buffers.items()})
        return state

    def save(path: str | os.PathLike) -> None:
        state = {
            "fingerprint": fingerprint,
            "epoch": epoch,
            "step": step,
            "active": active,
            "params": {n: t.detach().cpu() for n, t in params.items()},
            "buffers": {n: t.cpu() for n, t in buffers.items()},
            "optimizer": {k: ([t.cpu() for t in v] if isinstance(v, list) else (v.cpu() if isinstance(v, Tensor) else v)) for k, v in optimizer.state_dict().items()},
            "scheduler": scheduler.state_dict(),
            "best_loss": best_loss,
            "best_epoch": best_epoch,
            "best_states": best_states,
            "history": history,
            "running": running.cpu(),
            "elapsed": elapsed_before + time.perf_counter() - started,
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != fingerprint:
            log(f"ignoring checkpoint {checkpoint}: it belongs to another configuration")
        else:
            epoch, step, active = state["epoch"], state["step"], state["active"]
            params = {n: t.to(device).requires_grad_() for n, t in state["params"].items()}
            buffers = {n: t.to(device) for n, t in state["buffers"].items()}
            opt = state["optimizer"]
            optimizer.params = list(params.values())
            optimizer.load_state_dict(
                {"lr": opt["lr"], "step_count": opt["step_count"],
                 "m": [t.to(device) for t in opt["m"]], "v": [t.to(device) for t in opt["v"]]}
            )
            scheduler.load_state_dict(state["scheduler"])
            best_loss, best_epoch = state["best_loss"], state["best_epoch"]
            best_states, history = state["best_states"], state["history"]
            running, elapsed_before = state["running"].to(device), state["elapsed"]
            subset_index, subset_index_cpu = subset_index[active], subset_index_cpu[active]
            log(f"resumed from {checkpoint} at epoch {epoch}, step {step}, members {active}")

    terminate = {"flag": False}

    def on_sigterm(signum, frame):  # noqa: ARG001
        terminate["flag"] = True

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm) if checkpoint is not None else None
    started = time.perf_counter()
    last_save = started
    steps_per_epoch = math.ceil(budget / config.batch_size)
    if budget - (steps_per_epoch - 1) * config.batch_size < 2:
        steps_per_epoch -= 1  # a last batch of one pair has no marginal partner
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp)
    progress = Progress(config.epochs, steps_per_epoch)
    try:
        while active and epoch <= config.epochs:
            epoch_start = time.perf_counter()
            orders_cpu = torch.stack([epoch_order(seeds[m], epoch, budget, groups=groups[m]) for m in active])
            orders = orders_cpu.to(device)  # (K, budget) positions in each member's subset
            lmbda_epoch = config.penalty_at(epoch)
            while step < steps_per_epoch:
                window = slice(step * config.batch_size, (step + 1) * config.batch_size)
                index = torch.gather(subset_index, 1, orders[:, window])  # (K, B) union rows
                index_cpu = torch.gather(subset_index_cpu, 1, orders_cpu[:, window]) if rows.streamed else None
                theta, x = rows.theta(index), rows.x(index, index_cpu)
                with autocast:
                    logits = batched(params, buffers, theta, x, torch.roll(theta, 1, dims=1)).float()
                b = theta.shape[1]
                loss = bnre_loss(logits[:, :b], logits[:, b:], lmbda_epoch)  # (K,)
                optimizer.zero_grad()
                loss.sum().backward()
                optimizer.step()
                running[: len(active)] += loss.detach().double()
                step += 1
                if terminate["flag"]:
                    save(checkpoint)
                    raise Interrupted(f"SIGTERM: checkpoint written at epoch {epoch}, step {step}")
                progress.update(epoch, step, lambda: float(running[: len(active)].mean()) / step)
            train_loss = running[: len(active)].cpu() / steps_per_epoch
            val_loss, val_balancing = validate_stacked(batched, params, buffers, validation, lmbda)
            lr_used = optimizer.lr.clone()
            optimizer.lr = scheduler.step(val_loss.double().cpu(), optimizer.lr)
            seconds = time.perf_counter() - epoch_start
            stop = []
            for i, member in enumerate(active):
                v = float(val_loss[i])
                if not math.isfinite(float(train_loss[i])):
                    raise FloatingPointError(f"member {member}: non-finite training loss at epoch {epoch}")
                if v < best_loss[member]:
                    best_loss[member], best_epoch[member] = v, epoch
                    best_states[member] = member_state(i)
                history.append(
                    dict(member=member, epoch=epoch, train_loss=float(train_loss[i]), val_loss=v,
                         val_balancing=float(val_balancing[i]), lr=float(lr_used[i]), seconds=seconds)
                )
                if epoch - best_epoch[member] >= config.patience:
                    stop.append(i)
                    log(f"member {member}: early stop at epoch {epoch}, best epoch {best_epoch[member]}")
            log(
                f"epoch {epoch:4d} " + " ".join(
                    f"[{m}] train {float(train_loss[i]):.4f} val {float(val_loss[i]):.4f} bal {float(val_balancing[i]):.3f}"
                    for i, m in enumerate(active)
                ) + f" ({seconds:.1f}s)"
            )
            if stop:
                keep = torch.tensor([i for i in range(len(active)) if i not in stop], dtype=torch.long)
                active = [active[i] for i in keep.tolist()]
                params = {n: t.detach()[keep.to(device)].requires_grad_() for n, t in params.items()}
                buffers = {n: t[keep.to(device)] for n, t in buffers.items()}
                optimizer.params = list(params.values())
                optimizer.select(keep.to(device))  # lr stays on the CPU
                scheduler.select(keep)
                subset_index, subset_index_cpu = subset_index[keep.to(device)], subset_index_cpu[keep]
            epoch, step = epoch + 1, 0
            running = torch.zeros(k_total, dtype=torch.float64, device=device)
            if checkpoint is not None and time.perf_counter() - last_save >= config.checkpoint_seconds:
                save(checkpoint)
                last_save = time.perf_counter()
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        progress.close()
    return best_states, history


@torch.no_grad()
def validate_stacked(batched, params, buffers, validation: ValidationPairs, lmbda: float) -> tuple[Tensor, Tensor]:
    """Objective and balancing value of each member over the whole validation set."""
    k = next(iter(params.values())).shape[0]
    joint, marginal = [], []
    for t, xx, tm in validation:
        logits = batched(params, buffers, t.expand(k, *t.shape), xx.expand(k, *xx.shape), tm.expand(k, *tm.shape))
        n = len(t)
        joint.append(logits[:, :n])
        marginal.append(logits[:, n:])
    lj, lm = torch.cat(joint, dim=1), torch.cat(marginal, dim=1)
    return bnre_loss(lj, lm, lmbda), balancing(lj, lm)
