r"""The :math:`K` members of an ensemble as one stacked model, trained together.

The members' parameters are stacked along a leading dimension
(:func:`torch.func.stack_module_state`) and one forward pass evaluates every member on its
own batch with :func:`torch.func.vmap`. The summed loss :math:`\sum_k \mathcal{L}_k(\phi_k)`
has gradient :math:`\nabla_{\phi_k} \mathcal{L}_k` for member :math:`k`, so with one
learning rate and one plateau scheduler per member (:mod:`bnre.training.optim`) each member trains
as if alone. Members that stop early are dropped from the stack.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ..methods import Method
from ..methods.config import TrainConfig
from ..methods.losses import balancing
from ..nets.estimators import ConditionalEstimator, RatioEstimator
from ..nets.logits import Logits
from .optim import StackedAdamW, StackedPlateau
from .stream import ValidationPairs


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
    def applies(estimator: ConditionalEstimator) -> bool:
        if not isinstance(estimator, RatioEstimator):
            return False
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

    def __call__(
        self, params: dict, buffers: dict, theta: Tensor, x: Tensor, theta_marginal: Tensor, noise: Tensor | None = None
    ) -> Logits:
        """Logits (K, B) of the joint pairs (theta, x) and of the marginal pairs (theta', x):
        (K, B) for ``theta_marginal`` (K, B, D), (K, B, C) for (K, B, C, D)."""
        if noise is not None:
            raise ValueError("a ratio estimator has no draws of its own: it takes no noise")
        b = theta.shape[1]
        x = self.preprocess(x)
        x = ((x - buffers["x_mean"][:, None]) / buffers["x_std"][:, None]).flatten(2)
        partners = theta_marginal.shape[2:-1]  # () or (C,)
        if partners:
            x_marginal = x[:, :, None].expand(-1, -1, *partners, -1).flatten(1, 2)
            theta_marginal = theta_marginal.flatten(1, 2)
        else:
            x_marginal = x
        theta = torch.cat([theta, theta_marginal], dim=1)
        theta = (theta - buffers["theta_shift"][:, None]) / buffers["theta_scale"][:, None]
        h = torch.cat([theta, torch.cat([x, x_marginal], dim=1)], dim=-1)
        last = len(self.linears) - 1
        for i, name in enumerate(self.linears):
            h = torch.bmm(h, params[f"{name}.weight"]) + params[f"{name}.bias"]
            if i < last:
                h = self.activation(h)
        h = h.squeeze(-1)
        return Logits(h[:, :b], h[:, b:].unflatten(1, (b, *partners)))


class VmappedEstimator:
    """Any estimator's forward, vectorised over the stacked members with ``vmap``."""

    def __init__(self, estimator: ConditionalEstimator):
        self.base = copy.deepcopy(estimator).to("meta")
        self.batched = vmap(self.single)

    def single(self, params: dict, buffers: dict, theta: Tensor, x: Tensor, theta_marginal: Tensor, *noise) -> dict:
        # the estimator's forward embeds x once for the joint and the marginal pairs; vmap
        # returns tensors only, so the fields left None are left out
        logits = functional_call(self.base, (params, buffers), (theta, x, theta_marginal, *noise))
        return {name: t for name, t in logits._asdict().items() if t is not None}

    def to_fast(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return params

    def member(self, params: dict[str, Tensor], i: int) -> dict[str, Tensor]:
        return {n: t[i].detach() for n, t in params.items()}

    def __call__(
        self, params: dict, buffers: dict, theta: Tensor, x: Tensor, theta_marginal: Tensor, noise: Tensor | None = None
    ) -> Logits:
        """Every member's logits; with ``noise`` (K, B, S, D), also the log densities of the
        members' own draws from it (density estimators)."""
        extra = () if noise is None else (noise,)
        return Logits(**self.batched(params, buffers, theta, x, theta_marginal, *extra))


class StackedEnsemble:
    r"""Stacked members with their optimiser, schedulers and best states.

    ``active`` lists the member ids still training, in stack order; member :math:`k`'s
    lowest validation loss ``best_loss[k]`` was reached in epoch ``best_epoch[k]``, and
    ``kept_states[k]`` are the weights it keeps, from epoch ``kept_epoch[k]``.
    """

    def __init__(self, estimators: list[ConditionalEstimator], config: TrainConfig, device: torch.device):
        k = len(estimators)
        self.layout = StackedMLP(estimators[0]) if StackedMLP.applies(estimators[0]) else VmappedEstimator(estimators[0])
        params, self.buffers = stack_module_state([e.to(device) for e in estimators])
        self.params = self.layout.to_fast(params)
        self.optimizer = StackedAdamW(
            list(self.params.values()), torch.full((k,), config.lr, dtype=torch.float64), weight_decay=config.weight_decay
        )
        self.scheduler = StackedPlateau(
            k, config.scheduler_factor, config.scheduler_patience, min_lr=config.scheduler_min_lr
        )
        self.keep_last = config.keep == "last"
        self.active = list(range(k))
        self.best_loss = [math.inf] * k
        self.best_epoch = [0] * k
        #: the weights kept for each member: its best epoch's, or with ``keep="last"`` its last
        self.kept_states: list[dict] = [{} for _ in range(k)]
        self.kept_epoch = [0] * k

    def forward(self, theta: Tensor, x: Tensor, theta_marginal: Tensor, noise: Tensor | None = None) -> Logits:
        """Logits of every active member on its own batch: inputs (K, B, ...); ``noise``
        as :meth:`bnre.nets.estimators.ConditionalEstimator.forward`'s."""
        return self.layout(self.params, self.buffers, theta, x, theta_marginal, noise)

    def step(self, loss: Tensor, part: Tensor | None = None) -> tuple[Tensor, Tensor] | None:
        """One optimiser step on the members' losses (K,). With ``part`` (K,), a term of
        ``loss`` (e.g. the penalty), also return per member the gradient norms of ``part``
        and of the rest of the loss (one extra backward pass of ``part``)."""
        self.optimizer.zero_grad()
        params = list(self.params.values())
        grads = None
        if part is not None and part.requires_grad:
            grads = torch.autograd.grad(part.sum(), params, retain_graph=True, allow_unused=True)
        loss.sum().backward()
        norms = None
        if part is not None:
            grads = grads or [None] * len(params)
            zero = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
            norms = tuple(
                torch.stack([t.detach().double().flatten(1).square().sum(1) for t in tensors]).sum(0).sqrt().cpu()
                for tensors in (zero, [p.grad - g for p, g in zip(params, zero)])
            )
        self.optimizer.step()
        return norms

    @torch.no_grad()
    def validate(self, validation: ValidationPairs, method: Method, batch: int | None = None) -> tuple[Tensor, Tensor]:
        """Objective (``method.loss`` at the full penalty) and balancing value of every
        active member over the whole validation set; with ``batch``, the objective is the
        mean of its values on consecutive batches of ``batch`` pairs (a last batch of fewer
        than 2 pairs left out), as the authors' held-out loss."""
        k = len(self.active)
        parts = [
            method.validation_logits(self.forward, t.expand(k, *t.shape), xx.expand(k, *xx.shape), tm.expand(k, *tm.shape))
            for t, xx, tm in validation
        ]
        logits = Logits.cat(parts, dim=1)
        value = balancing(logits.joint, logits.marginal)
        if batch is None:
            return method.loss(logits), value
        n = logits.joint.shape[1]
        losses = [method.loss(logits.map(lambda t: t[:, a : a + batch])) for a in range(0, n, batch) if n - a >= 2]
        return torch.stack(losses).mean(dim=0), value

    def record(self, epoch: int, val_loss: Tensor) -> None:
        """Track each member's best validation loss and keep its weights (the best epoch's,
        or every epoch's with ``keep="last"``); step the schedulers. A NaN loss is never an
        improvement."""
        for i, member in enumerate(self.active):
            improved = float(val_loss[i]) < self.best_loss[member]
            if improved:
                self.best_loss[member], self.best_epoch[member] = float(val_loss[i]), epoch
            if improved or self.keep_last:
                self.kept_states[member], self.kept_epoch[member] = self.member_state(i), epoch
        self.optimizer.lr = self.scheduler.step(val_loss.double().cpu(), self.optimizer.lr)

    def member_state(self, i: int) -> dict[str, Tensor]:
        """State dict of stack row ``i`` as a plain :class:`~bnre.nets.estimators.RatioEstimator`'s."""
        state = {n: t.cpu().clone() for n, t in self.layout.member(self.params, i).items()}
        state.update({n: t[i].detach().cpu().clone() for n, t in self.buffers.items()})
        return state

    def drop(self, positions: list[int]) -> None:
        """Remove the members at stack ``positions`` from training."""
        if not positions:
            return
        keep = torch.tensor([i for i in range(len(self.active)) if i not in positions], dtype=torch.long)
        self.active = [self.active[i] for i in keep.tolist()]
        device = next(iter(self.params.values())).device
        self.params = {n: t.detach()[keep.to(device)].requires_grad_() for n, t in self.params.items()}
        self.buffers = {n: t[keep.to(device)] for n, t in self.buffers.items()}
        self.optimizer.params = list(self.params.values())
        self.optimizer.select(keep)
        self.scheduler.select(keep)

    def state_dict(self) -> dict:
        return {
            "active": self.active,
            "params": {n: t.detach().cpu() for n, t in self.params.items()},
            "buffers": {n: t.cpu() for n, t in self.buffers.items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "kept_states": self.kept_states,
            "kept_epoch": self.kept_epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        device = next(iter(self.params.values())).device
        self.active = state["active"]
        self.params = {n: t.to(device).requires_grad_() for n, t in state["params"].items()}
        self.buffers = {n: t.to(device) for n, t in state["buffers"].items()}
        self.optimizer.params = list(self.params.values())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best_loss, self.best_epoch = state["best_loss"], state["best_epoch"]
        self.kept_states, self.kept_epoch = state["kept_states"], state["kept_epoch"]
