"""NRE and BNRE losses against their formulas on hand-made inputs."""

import math

import pytest
import torch
import torch.nn.functional as F

from bnre.methods.losses import balancing, bnre_loss, marginal_theta, nre_loss

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


def test_summed_loss_is_twice_the_averaged_loss_with_half_the_lambda():
    generator = torch.Generator().manual_seed(3)
    joint, marginal = torch.randn(4, 64, generator=generator), torch.randn(4, 64, generator=generator) - 1
    summed = bnre_loss(joint, marginal, 100.0, bce="sum")
    assert torch.allclose(summed, 2 * bnre_loss(joint, marginal, 50.0, bce="mean"), rtol=1e-6)
    assert torch.allclose(nre_loss(joint, marginal, "sum"), 2 * nre_loss(joint, marginal, "mean"))
    with pytest.raises(ValueError, match="unknown cross-entropy convention 'median'"):
        nre_loss(joint, marginal, "median")


def test_unbiased_penalty_averages_to_the_squared_violation_of_the_population():
    """Over many batches drawn from a fixed population of classifier outputs, the halves'
    product averages to v^2, the squared violation of the population, while the squared
    batch violation averages to v^2 + Var[v_b] (the batch-variance part).

    Population: d_joint ~ U(0.2, 0.9), d_marginal ~ U(0.05, 0.5), so v = 0.55 + 0.275 - 1
    = -0.175, v^2 = 0.030625. With B = 32 the batch violation has variance
    (0.7^2 + 0.45^2) / 12 / 32 = 1.80e-3. 80,000 batches: the standard error of the
    unbiased mean is 5.5e-5 (measured: the product's sd is 0.0154), so 5e-4 is 9 sigma
    (false-failure rate < 1e-18); the squared penalty's excess, 1.8e-3, is checked to 10%
    (> 7 sigma of its own standard error)."""
    from bnre.methods.losses import squared_penalty, unbiased_penalty

    generator = torch.Generator().manual_seed(0)
    n, b = 80_000, 32
    d_joint = 0.2 + 0.7 * torch.rand(n, b, generator=generator, dtype=torch.float64)
    d_marginal = 0.05 + 0.45 * torch.rand(n, b, generator=generator, dtype=torch.float64)
    joint, marginal = torch.logit(d_joint), torch.logit(d_marginal)
    v2 = (0.55 + 0.275 - 1) ** 2
    unbiased = unbiased_penalty(joint, marginal)
    squared = squared_penalty(joint, marginal)
    assert abs(unbiased.mean().item() - v2) < 5e-4
    assert unbiased.std().item() / n**0.5 < 6e-5
    variance = (0.7**2 + 0.45**2) / 12 / b
    assert squared.mean().item() - v2 == pytest.approx(variance, rel=0.1)
    # the penalty is the product of the two halves' violations, pair for pair
    half = b // 2
    first = torch.sigmoid(joint[:, :half]).mean(-1) + torch.sigmoid(marginal[:, :half]).mean(-1) - 1
    second = torch.sigmoid(joint[:, half:]).mean(-1) + torch.sigmoid(marginal[:, half:]).mean(-1) - 1
    assert torch.allclose(unbiased, first * second)
