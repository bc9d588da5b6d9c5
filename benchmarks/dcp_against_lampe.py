"""CalNRE's and CalNPE's objectives against lampe 0.9's DCPNRELoss and DCPNPELoss.

Run from the repository root, with lampe and torchsort installed (torchsort ships as source;
on a machine with an ``nvcc`` but no CUDA toolkit, build it for the CPU with that ``nvcc``
off the PATH)::

    pip install lampe==0.9.0
    env PATH=<PATH without nvcc's folder> pip install --no-build-isolation torchsort==0.1.10
    python benchmarks/dcp_against_lampe.py

On SLCP pairs, with the same estimators (an MLP ratio estimator; an NSF flow on raw
parameters) and the same random draws (lampe's prior draws, or its flow's base noise,
seeded alike), each objective's value and its gradient with respect to every weight are
compared, for the conservative and the calibrated forms and several weights and sort
strengths. The package's tests check the same objectives against a reference written from
the paper's definitions (``tests/methods/test_dcp.py``), since torchsort cannot be installed
from the README's commands; this script is the comparison with lampe, run by hand.

Ends with ``dcp_against_lampe max_loss_error=<e> max_grad_error=<g>`` (relative).
"""

from __future__ import annotations

import argparse

from common import device_name

import numpy as np
import torch
import zuko

from bnre.methods import get_method
from bnre.methods.config import TrainConfig
from bnre.tasks import get_task


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def gradients(loss: torch.Tensor, module: torch.nn.Module) -> list[torch.Tensor]:
    params = [p for p in module.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, params, allow_unused=True))


def compare(ours: torch.Tensor, theirs: torch.Tensor, module: torch.nn.Module) -> tuple[float, float]:
    grad_ours, grad_theirs = gradients(ours, module), gradients(theirs, module)
    errors = [relative(a, b) for a, b in zip(grad_ours, grad_theirs) if b is not None and b.abs().max() > 0]
    return relative(ours, theirs), max(errors)


class LampeRatio(torch.nn.Module):
    """Our ratio estimator as lampe calls it: ``estimator(theta (..., N, D), x (N, L))``."""

    def __init__(self, estimator):
        super().__init__()
        self.estimator = estimator

    def forward(self, theta, x):
        embedding = self.estimator.embed(x)
        return self.estimator.head_log_ratio(theta, embedding.expand(*theta.shape[:-1], embedding.shape[-1]))


class LampeFlow(torch.nn.Module):
    """Our posterior flow as lampe's NPE: ``flow(x)`` a distribution, ``estimator(theta, x)`` its log density."""

    def __init__(self, estimator):
        super().__init__()
        self.estimator = estimator

    def flow(self, x):
        return self.estimator.flow(self.estimator.embed(x))

    def forward(self, theta, x):
        embedding = self.estimator.embed(x)
        return self.estimator.log_density(theta, embedding.expand(*theta.shape[:-1], embedding.shape[-1]))


def nre_case(task, theta, x, lmbda: float, calibration: bool, strength: float, samples: int, seed: int):
    from lampe.inference.dcp import DCPNRELoss

    config = TrainConfig(method="calnre", hidden=[64, 64], dcp_lambda=lmbda, dcp_calibration=calibration,
                         dcp_sort_strength=strength, dcp_samples=samples)
    method = get_method(config, task)
    torch.manual_seed(seed)
    estimator = method.estimator(task)
    prior = zuko.distributions.BoxUniform(torch.as_tensor(task.prior.lower, dtype=torch.float32),
                                          torch.as_tensor(task.prior.upper, dtype=torch.float32))
    theirs_module = DCPNRELoss(LampeRatio(estimator), prior, lmbda=lmbda, n_samples=samples, calibration=calibration,
                               sort_kwargs=dict(regularization_strength=strength))
    torch.manual_seed(seed + 1)
    draws = prior.sample((samples, len(theta)))  # what lampe draws next, after the same seed
    torch.manual_seed(seed + 1)
    theirs = theirs_module(theta, x)
    ours = method.loss(method.logits(estimator, theta, x, None, draws.transpose(0, 1)))
    return compare(ours, theirs, estimator)


def npe_case(task, theta, x, lmbda: float, calibration: bool, strength: float, samples: int, seed: int):
    from lampe.inference.dcp import DCPNPELoss

    config = TrainConfig(method="calnpe", flow_hidden=[64, 64], flow_transforms=3, normalise="none", dcp_lambda=lmbda,
                         dcp_calibration=calibration, dcp_sort_strength=strength, dcp_samples=samples)
    method = get_method(config, task)
    torch.manual_seed(seed)
    estimator = method.estimator(task)
    wrapped = LampeFlow(estimator)
    theirs_module = DCPNPELoss(wrapped, lmbda=lmbda, n_samples=samples, calibration=calibration,
                               sort_kwargs=dict(regularization_strength=strength))
    torch.manual_seed(seed + 1)
    noise = wrapped.flow(x).base.rsample((samples,))  # (S, N, D), what lampe's rsample draws next
    torch.manual_seed(seed + 1)
    theirs = theirs_module(theta, x)
    ours = method.loss(method.logits(estimator, theta, x, None, noise.transpose(0, 1)))
    return compare(ours, theirs, estimator)


def pieces_case(samples: int, calibration: bool, strength: float, seed: int) -> tuple[float, float]:
    """The rank statistic and the regulariser alone, on the same log densities and the same
    ranks: the largest relative error of the values and of their gradients."""
    from lampe.inference.dcp import DCPNRELoss

    from bnre.methods.dcp import coverage_regulariser, rank_statistics

    generator = torch.Generator().manual_seed(seed)
    prior = zuko.distributions.BoxUniform(-torch.ones(2), torch.ones(2))
    module = DCPNRELoss(None, prior, n_samples=samples, calibration=calibration,
                        sort_kwargs=dict(regularization_strength=strength))
    draws = prior.sample((samples, 128))
    log_q = (2 * torch.randn(1 + samples, 128, generator=generator)).requires_grad_()
    theirs = module.get_rank_statistics(log_q, draws)
    ours = rank_statistics(log_q[0], log_q[1:].T, (log_q[1:] - prior.log_prob(draws)).T)
    weights = torch.randn(128, generator=generator)
    value_error = relative(ours, theirs)
    grad_error = relative(*(torch.autograd.grad((r * weights).sum(), log_q)[0] for r in (ours, theirs)))
    ranks = ours.detach().requires_grad_()
    regulariser_ours = coverage_regulariser(ranks, calibration, strength)
    target, ecdf = module.get_cdfs(ranks)
    regulariser_theirs = module.activation(target - ecdf).pow(2).mean()
    value_error = max(value_error, relative(regulariser_ours, regulariser_theirs))
    grads = [torch.autograd.grad(r, ranks)[0] for r in (regulariser_ours, regulariser_theirs)]
    return value_error, max(grad_error, relative(*grads))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=128)
    args = parser.parse_args()
    task = get_task("slcp")
    rng = np.random.default_rng(0)
    theta_np = task.prior.sample(args.pairs, rng)
    theta = torch.as_tensor(theta_np, dtype=torch.float32)
    x = torch.as_tensor(task.simulate(theta_np, rng), dtype=torch.float32).flatten(1)
    worst = [0.0, 0.0]
    print(f"device: {device_name()}; SLCP, {args.pairs} pairs; relative errors of our objective against lampe 0.9's (value, gradient)")
    for case, name in ((nre_case, "DCPNRELoss"), (npe_case, "DCPNPELoss")):
        for lmbda, calibration, strength, samples in ((5.0, False, 1.0, 16), (1.0, True, 1.0, 8),
                                                      (20.0, False, 0.1, 16), (5.0, True, 10.0, 4)):
            loss_error, grad_error = case(task, theta, x, lmbda, calibration, strength, samples, seed=3)
            worst = [max(worst[0], loss_error), max(worst[1], grad_error)]
            print(f"  {name} lambda={lmbda:5.1f} calibration={calibration!s:5} strength={strength:5.1f} "
                  f"samples={samples:2d}: value {loss_error:.1e}, gradient {grad_error:.1e}")
    pieces = [0.0, 0.0]
    for samples, calibration, strength in ((16, False, 1.0), (4, True, 10.0), (8, True, 0.1)):
        value_error, grad_error = pieces_case(samples, calibration, strength, seed=5)
        pieces = [max(pieces[0], value_error), max(pieces[1], grad_error)]
    print(f"  the rank statistic and the regulariser alone, on the same inputs: value {pieces[0]:.1e}, "
          f"gradient {pieces[1]:.1e}")
    print("  (end-to-end gradients can differ where ranks tie or nearly tie: the sort then routes the tied")
    print("  positions' gradients by an order that rounding decides, in lampe as here)")
    print(f"dcp_against_lampe max_loss_error={worst[0]:.2e} max_grad_error={worst[1]:.2e} "
          f"same_inputs_value_error={pieces[0]:.2e} same_inputs_grad_error={pieces[1]:.2e}")


if __name__ == "__main__":
    main()
