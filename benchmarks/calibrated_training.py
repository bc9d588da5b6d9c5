"""Training speed of the calibration-regularised NRE: bnre's stacked CalNRE ensemble against
lampe 0.9's DCPNRELoss in the plain loop a user writes, in one run.

Run from the repository root, with lampe and torchsort installed (benchmarks/dcp_against_lampe.py
says how)::

    python benchmarks/calibrated_training.py [--epochs 2] [--members 3] [--samples 16]

SLCP, the laptop study's 3×128 SELU MLP, batch 128, 2^13 training pairs, λ = 5 and
``n_samples`` draws per pair. Both train the same architecture on the same data for the
same number of epochs:

* bnre ``fit_ensemble`` with K CalNRE members stacked (one process; it also validates on
  1,024 pairs per epoch, with their draws, which the lampe loop does not);
* lampe: ``NRE`` + ``DCPNRELoss`` + ``AdamW``, K times;
* for scale, bnre's stacked NRE ensemble on the same pairs.

A CalNRE batch evaluates the network on ``n_samples`` + 2 parameters per pair (the pair,
its marginal partner and the draws) against NRE's 2, so its epochs cost about
(``n_samples`` + 2) / 2 NRE epochs; the ratio measured here is what a study's training
wall time grows by when NRE becomes CalNRE.

Ends with ``calnre speedup_vs_lampe=<x> cost_vs_nre=<y> peak_fraction=<z>``.
"""

from __future__ import annotations

import argparse

from common import device_name, ensemble_seconds, matmul_peak, plain_loop_seconds

import torch
import zuko
from torch import nn

from bnre.methods.config import TrainConfig
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task

BUDGET = 2**13
HIDDEN = [128, 128, 128]


def forward_flops_per_pair(rows: int, theta: int, x: int) -> int:
    sizes = [theta + x, *HIDDEN, 1]
    return rows * sum(2 * a * b for a, b in zip(sizes, sizes[1:]))


def lampe_loop(task, train: Pairs, epochs: int, samples: int, seed: int, device: str) -> float:
    """Seconds of a plain lampe CalNRE training loop (one member), data on the device."""
    import lampe
    from lampe.inference.dcp import DCPNRELoss

    torch.manual_seed(seed)
    dim, features = task.prior.dim, train.x.shape[1]
    estimator = lampe.inference.NRE(dim, features, hidden_features=HIDDEN, activation=nn.SELU).to(device)
    prior = zuko.distributions.BoxUniform(torch.as_tensor(task.prior.lower, dtype=torch.float32, device=device),
                                          torch.as_tensor(task.prior.upper, dtype=torch.float32, device=device))
    loss = DCPNRELoss(estimator, prior, lmbda=5.0, n_samples=samples)
    theta = torch.as_tensor(train.theta[:BUDGET], device=device)
    x = torch.as_tensor(train.x[:BUDGET], device=device)
    return plain_loop_seconds(estimator.parameters(), loss, theta, x, epochs, device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    k, epochs, samples = args.members, args.epochs, args.samples

    task = get_task("slcp")
    train = Pairs(*simulate_range(task, "train", 1, 0, BUDGET), {"task": "slcp"})
    val = Pairs(*simulate_range(task, "val", 1, 0, 1024), {"task": "slcp"})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    common = dict(replicates=k, epochs=epochs, patience=10**6, hidden=HIDDEN, batch_size=128, device=device)
    calnre = TrainConfig(method="calnre", dcp_lambda=5.0, dcp_samples=samples, **common)
    nre = TrainConfig(method="nre", **common)
    peak = matmul_peak()

    ensemble_seconds(task, train, val, TrainConfig(**{**calnre.__dict__, "epochs": 1}), [0], BUDGET)  # warm-up
    ours = ensemble_seconds(task, train, val, calnre, list(range(k)), BUDGET)
    plain = ensemble_seconds(task, train, val, nre, list(range(k)), BUDGET)
    lampe_loop(task, train, 1, samples, 0, device)  # warm-up
    lampe_s = sum(lampe_loop(task, train, epochs, samples, m, device) for m in range(k))

    pairs_members = BUDGET * epochs * k
    dim, features = task.prior.dim, train.x.shape[1]
    flops = 3 * forward_flops_per_pair(samples + 2, dim, features) * pairs_members
    print(f"device: {device_name()}; float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"SLCP, 3x128 SELU, batch 128, {BUDGET} pairs, {epochs} epochs, K={k}, {samples} draws per pair")
    for name, seconds, rows in (("bnre stacked CalNRE", ours, samples + 2), ("K x lampe NRE + DCPNRELoss", lampe_s, samples + 2),
                                ("bnre stacked NRE (for scale)", plain, 2)):
        gflops = 3 * forward_flops_per_pair(rows, dim, features) * pairs_members / seconds / 1e9
        print(f"  {name:30s} {pairs_members / seconds:9.0f} pairs*members/s  {gflops:6.1f} GFLOP/s  {gflops / peak:5.1%} of peak")
    print(f"  CalNRE costs {ours / plain:.1f}x NRE's training time here ((n_samples + 2) / 2 = {(samples + 2) / 2:.0f} "
          "network rows per pair against NRE's)")
    print(f"calnre speedup_vs_lampe={lampe_s / ours:.2f} cost_vs_nre={ours / plain:.2f} "
          f"peak_fraction={flops / ours / 1e9 / peak:.2f}")


if __name__ == "__main__":
    main()
