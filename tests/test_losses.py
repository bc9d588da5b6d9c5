"""NRE and BNRE losses against their formulas on hand-made inputs."""

import math

import pytest
import torch
import torch.nn.functional as F

from bnre.losses import balancing, bnre_loss, marginal_theta, nre_loss

JOINT = torch.tensor([2.0, -0.5, 1.0])
MARGINAL = torch.tensor([-1.0, 0.3, -2.0])


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def test_nre_loss_is_mean_of_two_cross_entropies():
    bce_joint = sum(-math.log(sigmoid(v)) for v in JOINT.tolist()) / 3
    bce_marginal = sum(-math.log(1 - sigmoid(v)) for v in MARGINAL.tolist()) / 3
    assert nre_loss(JOINT, MARGINAL).item() == pytest.approx((bce_joint + bce_marginal) / 2, rel=1e-6)
    torch_bce = (
        F.binary_cross_entropy_with_logits(JOINT, torch.ones(3))
        + F.binary_cross_entropy_with_logits(MARGINAL, torch.zeros(3))
    ) / 2
    assert nre_loss(JOINT, MARGINAL).item() == pytest.approx(torch_bce.item(), rel=1e-6)


def test_bnre_loss_adds_squared_balancing_violation():
    d_joint = sum(sigmoid(v) for v in JOINT.tolist()) / 3
    d_marginal = sum(sigmoid(v) for v in MARGINAL.tolist()) / 3
    assert balancing(JOINT, MARGINAL).item() == pytest.approx(d_joint + d_marginal, rel=1e-6)
    for lmbda in (1.0, 100.0):
        expected = nre_loss(JOINT, MARGINAL).item() + lmbda * (d_joint + d_marginal - 1) ** 2
        assert bnre_loss(JOINT, MARGINAL, lmbda).item() == pytest.approx(expected, rel=1e-6)


def test_lambda_zero_is_nre():
    assert bnre_loss(JOINT, MARGINAL, 0.0).item() == nre_loss(JOINT, MARGINAL).item()


def test_balanced_classifier_has_no_penalty():
    # d_joint = 0.7 and d_marginal = 0.3 sum to one
    logit = torch.tensor([math.log(0.7 / 0.3)])
    assert bnre_loss(logit, -logit, 100.0).item() == pytest.approx(nre_loss(logit, -logit).item(), abs=1e-10)


def test_large_logits_are_finite():
    big = torch.tensor([200.0, -200.0])
    assert torch.isfinite(bnre_loss(big, big, 100.0))


def test_marginal_theta_rolls_by_one():
    theta = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(marginal_theta(theta), theta[[2, 0, 1]])


def test_bnre_loss_equals_lampe_bnreloss():
    import lampe  # the peer implementation, part of the test extra

    class Fixed(torch.nn.Module):
        """A 'network' returning given logits for (theta, theta') stacked as lampe does."""

        def forward(self, theta, x):
            return theta[..., 0]

    theta = torch.randn(16, 1)
    lampe_loss = lampe.inference.BNRELoss(Fixed(), lmbda=100.0)(theta, torch.zeros(16, 3))
    ours = bnre_loss(theta[:, 0], torch.roll(theta, 1, dims=0)[:, 0], 100.0)
    assert ours.item() == pytest.approx(lampe_loss.item(), rel=1e-6)
    nre = lampe.inference.NRELoss(Fixed())(theta, torch.zeros(16, 3))
    assert nre_loss(theta[:, 0], torch.roll(theta, 1, dims=0)[:, 0]).item() == pytest.approx(nre.item(), rel=1e-6)
