"""NPE training speed: bnre's vectorised ensemble of flows vs a plain zuko + torch loop.

Run from the repository root::

    python benchmarks/npe_training.py [--epochs 2] [--members 5]

SLCP, zuko's neural spline flow with 5 transforms of [128, 128] conditioned on x (8
features), batch 128, 2^13 training pairs, NPE's negative log-likelihood. Both train the
same flow on the same data for the same number of epochs:

* bnre ``fit_ensemble`` with K NPE members stacked (one process, ``vmap`` over the
  members' flows through ``torch.func.functional_call``);
* the loop a user writes with zuko: ``NSF`` + ``-flow(x).log_prob(theta).mean()`` +
  ``AdamW``, K times, one member after the other.

Throughput is pairs·members per second of whole training calls. bnre's trainer also
validates on 1,024 pairs per epoch, scoring the implied classifier on marginal pairs too,
and rescales theta; the plain loop does none of that (in its favour).

Ends with ``npe speedup_vs_zuko=<x>``.
"""

from __future__ import annotations

import argparse

from common import device_name, ensemble_seconds, plain_loop_seconds

import torch
import zuko

from bnre.methods.config import TrainConfig
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task

BUDGET = 2**13
TRANSFORMS, HIDDEN = 5, [128, 128]


def zuko_loop(train: Pairs, epochs: int, seed: int, device: str) -> float:
    """Seconds of a plain zuko training loop (one member), data on the device."""
    torch.manual_seed(seed)
    flow = zuko.flows.NSF(2, 8, transforms=TRANSFORMS, hidden_features=HIDDEN).to(device)
    theta = torch.as_tensor(train.theta[:BUDGET], device=device)
    x = torch.as_tensor(train.x[:BUDGET], device=device)
    return plain_loop_seconds(flow.parameters(), lambda t, c: -flow(c).log_prob(t).mean(), theta, x, epochs, device)


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
    config = TrainConfig(method="npe", replicates=k, epochs=epochs, patience=10**6, batch_size=128, device=device,
                         flow_transforms=TRANSFORMS, flow_hidden=HIDDEN)
    pairs_members = BUDGET * epochs * k

    ensemble_seconds(task, train, val, TrainConfig(**{**config.__dict__, "epochs": 1, "replicates": 1}), [0], BUDGET)  # warm-up
    ours = ensemble_seconds(task, train, val, config, list(range(k)), BUDGET)
    zuko_loop(train, 1, 0, device)  # warm-up
    plain = sum(zuko_loop(train, epochs, m, device) for m in range(k))

    print(f"device: {device_name()}")
    print(f"SLCP, NSF {TRANSFORMS} transforms of {HIDDEN}, batch 128, {BUDGET} pairs, {epochs} epochs, K={k}")
    for name, seconds in (("bnre vectorised NPE ensemble", ours), ("K x plain zuko + torch loop", plain)):
        print(f"  {name:30s} {pairs_members / seconds:9.0f} pairs*members/s  ({seconds:.1f} s)")
    print(f"npe speedup_vs_zuko={plain / ours:.2f}")


if __name__ == "__main__":
    main()
