r"""AdamW and ReduceLROnPlateau for stacked ensemble members, one learning rate each.

The parameters of :math:`K` members are stacked along a leading dimension (K, ...). Per
member, with :math:`t` the step count, :math:`\eta` its learning rate and :math:`w` the
weight decay:

.. math::
    \phi \leftarrow \phi (1 - \eta w), \quad
    m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
    v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
    \phi \leftarrow \phi - \eta \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon},

which is :class:`torch.optim.AdamW` applied to each member on its own.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fused_kernel_available(device: torch.device) -> bool:
    """Whether torch's fused AdamW kernel runs on ``device`` in this torch build."""
    if not hasattr(torch, "_fused_adamw_"):
        return False
    if device.type == "cpu":  # the CPU kernel exists from torch 2.4
        return tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 4)
    return device.type == "cuda"


class StackedAdamW:
    """AdamW on stacked parameters (K, ...) with a learning rate per member.

    The update runs torch's fused AdamW kernel (the one behind ``AdamW(fused=True)``),
    once on the whole stacks when the members share a learning rate, else once per
    distinct rate on the members' slices. That kernel is private API
    (``torch._fused_adamw_``), kept behind :func:`fused_kernel_available` for one reason:
    models trained before the public-ops path existed are reproduced bit for bit. The
    same update in public tensor ops (:meth:`step_public`, a learning rate per member as a
    broadcast tensor) runs wherever the kernel is missing, or with ``fused=False``; it
    agrees with the kernel to float rounding and made training 2 to 12% slower in three
    runs of ``benchmarks/training.py`` (line (c); SLCP, 6x256, K = 5, 2 CPU cores). Both are tested against
    :class:`torch.optim.AdamW`, member by member.
    """

    def __init__(
        self,
        params: list[Tensor],
        lr: Tensor,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool | None = None,
    ):
        self.params = params
        self.lr = lr  # (K,), float64, on the CPU
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        device = params[0].device
        self.fused = fused_kernel_available(device) if fused is None else fused
        if self.fused and not fused_kernel_available(device):
            raise ValueError(f"torch {torch.__version__} has no fused AdamW kernel for {device.type}")
        self._steps = torch.zeros((), device=device)

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        if not self.fused:
            self.step_public()
            return
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

    @torch.no_grad()
    def step_public(self) -> None:
        """The update of one step (``step_count`` already advanced) in public tensor ops."""
        beta1, beta2 = self.betas
        t = self.step_count
        correction1, correction2 = 1 - beta1**t, 1 - beta2**t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            lr = self.lr.to(device=p.device, dtype=p.dtype).reshape(-1, *[1] * (p.dim() - 1))
            p.mul_(1 - lr * self.weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denominator = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.sub_(m / denominator * (lr / correction1))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def select(self, keep: Tensor) -> None:
        """Keep only the members ``keep`` (indices into the stack)."""
        self.lr = self.lr[keep.cpu()]
        self.m = [m[keep.to(m.device)] for m in self.m]
        self.v = [v[keep.to(v.device)] for v in self.v]

    def state_dict(self) -> dict:
        """The optimiser's state, on the CPU (``load_state_dict`` moves it back)."""
        return {"lr": self.lr, "step_count": self.step_count, "m": [t.cpu() for t in self.m],
                "v": [t.cpu() for t in self.v]}

    def load_state_dict(self, state: dict) -> None:
        device = self.params[0].device
        self.lr = state["lr"].cpu()
        self.step_count = state["step_count"]
        self.m = [t.to(device) for t in state["m"]]
        self.v = [t.to(device) for t in state["v"]]


class StackedPlateau:
    """ReduceLROnPlateau (mode min, relative threshold, ``min_lr``) for each member's learning rate."""

    def __init__(
        self, k: int, factor: float, patience: int, threshold: float = 1e-4, eps: float = 1e-8, min_lr: float = 0.0
    ):
        self.factor, self.patience, self.threshold, self.eps, self.min_lr = factor, patience, threshold, eps, min_lr
        self.best = torch.full((k,), math.inf, dtype=torch.float64)
        self.bad_epochs = torch.zeros(k, dtype=torch.long)

    def step(self, loss: Tensor, lr: Tensor) -> Tensor:
        """Update with validation losses (K,); return the new learning rates."""
        better = loss < self.best * (1 - self.threshold)
        self.best = torch.where(better, loss, self.best)
        self.bad_epochs = torch.where(better, 0, self.bad_epochs + 1)
        reduce = self.bad_epochs > self.patience
        new_lr = (lr * self.factor).clamp_min(self.min_lr)
        reduce &= (lr - new_lr) > self.eps
        self.bad_epochs = torch.where(reduce, 0, self.bad_epochs)
        return torch.where(reduce, new_lr, lr)

    def select(self, keep: Tensor) -> None:
        self.best, self.bad_epochs = self.best[keep.cpu()], self.bad_epochs[keep.cpu()]

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
