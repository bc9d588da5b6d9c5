"""Training speed: bnre's vectorised ensemble vs K single runs vs lampe 0.9's plain loop.

Run from the repository root::

    python benchmarks/training.py [--epochs 2] [--members 5]

SLCP, the paper's 6×256 SELU MLP, batch 128, 2^14 training pairs, BNRE (λ = 100). All
three train the same architecture on the same data for the same number of epochs:

* bnre ``fit_ensemble`` with K members stacked (one process, vmap over members);
* (a) K sequential single-member runs of the same trainer (``replicates = 1``);
* (b) the loop a user writes with lampe: ``NRE`` + ``BNRELoss`` + ``AdamW``, K times;
* (c) the vectorised ensemble with the optimiser's public-ops update instead of torch's
  fused AdamW kernel (``bnre.training.optim.StackedAdamW.step_public``), the price of avoiding the
  private ``torch._fused_adamw_``;
* (d) the vectorised ensemble under bfloat16 autocast (``train.amp``), its speed against
  float32's (meaningful only where the hardware multiplies bf16 natively: AVX-512 BF16 or
  AMX, or a GPU).

Throughput is pairs·members per second of whole training calls: bnre's two trainers
also validate on 1,024 pairs per epoch, the lampe loop does not (in lampe's favour). The
achieved GFLOP/s counts 3× the forward multiply-adds (forward + backward) of the joint
and marginal pass, against this machine's float32 matmul peak measured in the same run.

Ends with ``train speedup_vs_lampe=<x> peak_fraction=<y>``.
"""

from __future__ import annotations

import argparse

from common import device_name, ensemble_seconds, matmul_peak, plain_loop_seconds

import torch
from torch import nn

from bnre.evaluation.precision import bf16_capable
from bnre.methods.config import TrainConfig
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task

BUDGET = 2**14
HIDDEN = [256] * 6


def forward_flops_per_pair() -> int:
    sizes = [2 + 8, *HIDDEN, 1]
    return sum(2 * a * b for a, b in zip(sizes, sizes[1:]))


def lampe_loop(train: Pairs, epochs: int, seed: int, device: str) -> float:
    """Seconds of a plain lampe training loop (one member), data on the device."""
    import lampe

    torch.manual_seed(seed)
    estimator = lampe.inference.NRE(2, 8, hidden_features=HIDDEN, activation=nn.SELU).to(device)
    theta = torch.as_tensor(train.theta[:BUDGET], device=device)
    x = torch.as_tensor(train.x[:BUDGET], device=device)
    return plain_loop_seconds(estimator.parameters(), lampe.inference.BNRELoss(estimator, lmbda=100.0), theta, x,
                              epochs, device)


def bnre_run(task, train: Pairs, val: Pairs, config: TrainConfig, members: list[int]) -> float:
    """Seconds of one ``fit_ensemble`` call training ``members`` together."""
    return ensemble_seconds(task, train, val, config, members, BUDGET)


def public_update_run(task, train: Pairs, val: Pairs, config: TrainConfig, members: list[int]) -> float:
    """:func:`bnre_run` with the fused AdamW kernel reported missing (the public-ops path)."""
    import bnre.training.optim

    available = bnre.training.optim.fused_kernel_available
    bnre.training.optim.fused_kernel_available = lambda device: False
    try:
        return bnre_run(task, train, val, config, members)
    finally:
        bnre.training.optim.fused_kernel_available = available


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()
    k, epochs = args.members, args.epochs

    task = get_task("slcp")
    train = Pairs(*simulate_range(task, "train", 1, 0, BUDGET), {"task": "slcp"})
    val = Pairs(*simulate_range(task, "val", 1, 0, 1024), {"task": "slcp"})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = TrainConfig(method="bnre", replicates=k, epochs=epochs, patience=10**6, hidden=HIDDEN, batch_size=128, device=device)
    pairs_members = BUDGET * epochs * k
    peak = matmul_peak()

    bnre_run(task, train, val, TrainConfig(**{**config.__dict__, "epochs": 1}), [0])  # warm-up
    ours = bnre_run(task, train, val, config, list(range(k)))
    sequential = sum(bnre_run(task, train, val, config, [m]) for m in range(k))
    public = public_update_run(task, train, val, config, list(range(k)))
    amp_config = TrainConfig(**{**config.__dict__, "amp": True})
    bnre_run(task, train, val, TrainConfig(**{**amp_config.__dict__, "epochs": 1}), [0])  # warm-up
    amp = bnre_run(task, train, val, amp_config, list(range(k)))
    lampe_loop(train, 1, 0, device)  # warm-up
    lampe_s = sum(lampe_loop(train, epochs, m, device) for m in range(k))

    flops = 3 * 2 * forward_flops_per_pair() * pairs_members  # 2 rows (joint, marginal) per pair
    print(f"device: {device_name()}; float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"SLCP, 6x256 SELU, batch 128, {BUDGET} pairs, {epochs} epochs, K={k}")
    rows = (
        ("bnre vectorised ensemble", ours),
        ("(a) K x bnre with one member", sequential),
        ("(b) K x lampe NRE+BNRELoss loop", lampe_s),
        ("(c) vectorised, public-ops AdamW", public),
        ("(d) vectorised, bf16 autocast (amp)", amp),
    )
    for name, seconds in rows:
        gflops = flops / seconds / 1e9
        print(f"  {name:34s} {pairs_members / seconds:9.0f} pairs*members/s  {gflops:6.1f} GFLOP/s  {gflops / peak:5.1%} of peak")
    print(f"  vectorised vs (a): {sequential / ours:.2f}x; vs (b): {lampe_s / ours:.2f}x; (c) / fused: {public / ours:.2f}x")
    print(f"  amp (d) vs float32: {ours / amp:.2f}x (native bf16: {bf16_capable(device)})")
    print(f"train speedup_vs_lampe={lampe_s / ours:.2f} peak_fraction={flops / ours / 1e9 / peak:.2f}")


if __name__ == "__main__":
    main()
