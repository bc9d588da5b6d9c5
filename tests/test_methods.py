"""Methods as objects: the registry, their losses, marginal pairs and estimators."""

import pytest
import torch

from bnre.config import TrainConfig
from bnre.losses import Logits, bnre_loss, nre_loss
from bnre.methods import BNRE, METHODS, NRE, build_estimator, get_method
from bnre.tasks import get_task


def test_registry_and_configured_methods():
    assert METHODS == {"nre": NRE, "bnre": BNRE}
    assert isinstance(get_method(TrainConfig(method="nre")), NRE)
    with pytest.raises(ValueError, match="unknown method 'npe'"):
        get_method(type("Config", (), {"method": "npe"})())


def test_losses_are_the_objectives_of_bnre_losses():
    generator = torch.Generator().manual_seed(1)
    logits = Logits(torch.randn(3, 50, generator=generator), torch.randn(3, 50, generator=generator))
    bnre = get_method(TrainConfig(method="bnre", lmbda=7.0, bce="sum"))
    nre = get_method(TrainConfig(method="nre", lmbda=7.0))
    assert torch.equal(bnre.loss(logits), bnre_loss(*logits, 7.0, bce="sum"))
    assert torch.equal(nre.loss(logits), nre_loss(*logits))  # NRE ignores lambda
    assert torch.equal(nre.penalty(logits), torch.zeros(3)) and nre.penalty_weight(3) == 0.0
    assert torch.allclose(bnre.loss(logits), bnre.cross_entropy(logits) + bnre.penalty(logits))


def test_raw_inputs_and_fixed_statistics():
    slcp, mg1 = get_task("slcp"), get_task("mg1")
    raw = build_estimator(slcp, [8], "SELU", normalise="none")
    assert torch.equal(raw.theta_shift, torch.zeros(slcp.theta_dim)) and torch.equal(raw.theta_scale, torch.ones(slcp.theta_dim))
    x = torch.randn(4, *slcp.x_shape)
    assert torch.equal(raw.embed(x), x.flatten(1))  # the head sees x itself
    fixed = build_estimator(mg1, [8], "SELU", normalise="fixed")
    mean, std = mg1.fixed_x_statistics()
    assert torch.allclose(fixed.x_mean, torch.tensor(mean)) and torch.allclose(fixed.x_std, torch.tensor(std))
    xm = torch.rand(3, 5) * 100
    assert torch.allclose(fixed.embed(xm), (xm - torch.tensor(mean)) / torch.tensor(std))  # no log1p preprocessing
    with pytest.raises(ValueError, match="task 'slcp' defines no fixed statistics"):
        build_estimator(slcp, [8], "SELU", normalise="fixed")


def test_standardise_only_with_training_statistics():
    task = get_task("gaussian")
    x = torch.randn(100, 2) * 3 + 5
    for normalise, expected in (("train", True), ("none", False)):
        method = get_method(TrainConfig(normalise=normalise))
        estimator = method.estimator(task)
        method.standardise(estimator, [x])
        assert (not torch.equal(estimator.x_std, torch.ones(2))) == expected


def test_permuted_marginals_are_a_permutation_of_the_batch():
    from bnre.config import TrainConfig
    from bnre.methods import get_method
    from bnre.sampling import marginal_permutations

    method = get_method(TrainConfig(marginals="permute", batch_size=16))
    perms = marginal_permutations(seed=7, epoch=3, budget=100, batch=16)
    assert [len(p) for p in perms] == [16] * 6 + [4]
    assert all(torch.equal(torch.sort(p).values, torch.arange(len(p))) for p in perms)
    assert all(torch.equal(a, b) for a, b in zip(perms, marginal_permutations(7, 3, 100, 16)))  # deterministic
    assert not torch.equal(perms[0], marginal_permutations(7, 4, 100, 16)[0])  # fresh each epoch
    theta = torch.randn(3, 16, 2)  # three members' batches
    permutation = torch.stack([perms[0], perms[1], perms[2]])
    partners = method.marginal_theta(theta, permutation)
    for k in range(3):
        assert torch.equal(partners[k], theta[k][permutation[k]])
        assert torch.equal(torch.sort(partners[k], dim=0).values, torch.sort(theta[k], dim=0).values)
    with pytest.raises(ValueError, match="needs a permutation"):
        method.marginal_theta(theta)
