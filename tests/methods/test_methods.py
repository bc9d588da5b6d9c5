"""Methods as objects: the registry, their losses, marginal pairs and estimators."""

import pytest
import torch

from bnre.methods import (BCNRE, BNPE, BNRE, CNRE, METHODS, NPE, NRE, CalNPE, CalNRE, build_estimator,
                          build_posterior_estimator, get_method)
from bnre.methods.config import TrainConfig
from bnre.methods.losses import bnre_loss, nre_loss
from bnre.nets.logits import Logits
from bnre.tasks import get_task
from bnre.tasks.priors import TruncatedNormal


def test_registry_and_configured_methods():
    assert METHODS == {"nre": NRE, "bnre": BNRE, "cnre": CNRE, "bnre_c": BCNRE, "npe": NPE, "bnpe": BNPE,
                       "calnre": CalNRE, "calnpe": CalNPE}
    assert isinstance(get_method(TrainConfig(method="nre")), NRE)
    with pytest.raises(ValueError, match="unknown method 'snpe'"):
        get_method(type("Config", (), {"method": "snpe"})())
    with pytest.raises(ValueError, match="unknown method 'snpe'"):
        TrainConfig(method="snpe")
    for name, method in METHODS.items():
        assert method.name == name


@pytest.mark.parametrize("key, value, message", [
    ("gamma", 0.0, "gamma must be > 0"),
    ("cardinality", 0, "cardinality must be >= 1"),
    ("cardinality", 65, r"batch_size \(128\) must be at least 2 \* cardinality \(130\)"),
    ("flow", "realnvp", "flow must be one of"),
    ("flow_transforms", 0, "flow_transforms must be >= 1"),
    ("flow_hidden", [], "flow_hidden must be a non-empty list"),
    ("flow_bins", 1, "flow_bins must be >= 2"),
])
def test_out_of_range_options_of_the_new_methods_are_refused(key, value, message):
    # the options' own bounds are TrainConfig's; a method's constraints between options
    # are its own, checked when the method is built
    with pytest.raises(ValueError, match=message):
        get_method(TrainConfig(method="bnre_c", **{key: value}))


def _ratio_and_batch(seed=0, n=12):
    task = get_task("slcp")
    torch.manual_seed(seed)
    estimator = build_estimator(task, [16, 16], "SELU")
    generator = torch.Generator().manual_seed(seed)
    theta = torch.rand(n, 2, generator=generator) * 6 - 3
    x = torch.randn(n, 8, generator=generator)
    return estimator, theta, x


@pytest.mark.parametrize("cardinality, gamma", [(1, 1.0), (2, 1.0), (3, 2.5), (6, 0.5)])
def test_contrastive_losses_equal_lampe(cardinality, gamma):
    """NRE-C and BNRE-C on a real estimator and batch: lampe 0.9's CNRELoss and BCNRELoss."""
    import lampe  # the peer implementation, part of the test extra

    estimator, theta, x = _ratio_and_batch()
    config = dict(cardinality=cardinality, gamma=gamma, lmbda=37.0, batch_size=12)
    cnre, bcnre = get_method(TrainConfig(method="cnre", **config)), get_method(TrainConfig(method="bnre_c", **config))
    ours = cnre.loss(cnre.logits(estimator, theta, x))
    peer = lampe.inference.CNRELoss(estimator, cardinality=cardinality, gamma=gamma)(theta, x)
    assert ours.item() == pytest.approx(peer.item(), rel=1e-5)
    ours = bcnre.loss(bcnre.logits(estimator, theta, x))
    peer = lampe.inference.BCNRELoss(estimator, cardinality=cardinality, gamma=gamma, lmbda=37.0)(theta, x)
    assert ours.item() == pytest.approx(peer.item(), rel=1e-5)
    assert ours.item() > cnre.loss(cnre.logits(estimator, theta, x)).item()  # the penalty is there


def test_contrastive_with_one_parameter_per_set_is_nre():
    estimator, theta, x = _ratio_and_batch()
    nre, cnre = get_method(TrainConfig(method="nre")), get_method(TrainConfig(method="cnre", cardinality=1))
    assert torch.allclose(cnre.loss(cnre.logits(estimator, theta, x)), nre.loss(nre.logits(estimator, theta, x)))
    with pytest.raises(ValueError, match="batches of at least 6"):
        get_method(TrainConfig(method="cnre", cardinality=3)).logits(estimator, theta[:5], x[:5])


def _posterior_estimator(prior=None):
    """A posterior estimator of SLCP's shape, optionally on a non-uniform prior."""
    task = get_task("slcp")
    if prior is not None:
        task.prior = prior
    torch.manual_seed(0)
    return build_posterior_estimator(task, TrainConfig(method="npe", flow_transforms=2, flow_hidden=[16, 16]))


def _log_q(estimator, theta, x):
    """log q(theta | x) from the flow itself: zuko's density of the rescaled theta, minus the
    log-Jacobian of the rescaling."""
    z = (theta - estimator.theta_shift) / estimator.theta_scale
    return estimator.flow(estimator.embed(x)).log_prob(z) - estimator.theta_scale.log().sum()


PRIORS = [None, TruncatedNormal([0.5, -1.0], [1.0, 2.0], [-3.0, -3.0], [3.0, 3.0])]


@pytest.mark.parametrize("prior", PRIORS, ids=["uniform", "truncated-normal"])
def test_npe_loss_is_the_negative_log_likelihood(prior):
    import lampe

    estimator, (_, theta, x) = _posterior_estimator(prior), _ratio_and_batch()
    npe = get_method(TrainConfig(method="npe"))
    logits = npe.logits(estimator, theta, x)
    expected = -_log_q(estimator, theta, x).mean()
    assert npe.loss(logits).item() == pytest.approx(expected.item(), rel=1e-6)

    class LogQ(torch.nn.Module):  # lampe's NPELoss on the same density
        def forward(self, theta, x):
            return _log_q(estimator, theta, x)

    assert npe.loss(logits).item() == pytest.approx(lampe.inference.NPELoss(LogQ())(theta, x).item(), rel=1e-6)
    # the implied classifier's logit: log q - log p
    log_p = estimator.prior.log_prob(theta)
    assert torch.allclose(logits.joint, _log_q(estimator, theta, x) - log_p, atol=1e-5)
    assert npe.penalty(logits).item() == 0.0


@pytest.mark.parametrize("prior", PRIORS, ids=["uniform", "truncated-normal"])
def test_bnpe_penalty_is_the_balancing_violation_of_the_implied_classifier(prior):
    estimator, (_, theta, x) = _posterior_estimator(prior), _ratio_and_batch()
    bnpe = get_method(TrainConfig(method="bnpe", lmbda=11.0))
    logits = bnpe.logits(estimator, theta, x)
    partners = torch.roll(theta, 1, dims=0)
    d_joint = torch.sigmoid(_log_q(estimator, theta, x) - estimator.prior.log_prob(theta))
    d_marginal = torch.sigmoid(_log_q(estimator, partners, x) - estimator.prior.log_prob(partners))
    violation = d_joint.mean() + d_marginal.mean() - 1
    assert bnpe.penalty(logits).item() == pytest.approx(11.0 * violation.item() ** 2, rel=1e-4)
    nll = -_log_q(estimator, theta, x).mean()
    assert bnpe.loss(logits).item() == pytest.approx(nll.item() + 11.0 * violation.item() ** 2, rel=1e-5)


def test_losses_are_the_objectives_of_bnre_losses():
    generator = torch.Generator().manual_seed(1)
    logits = Logits(torch.randn(3, 50, generator=generator), torch.randn(3, 50, generator=generator))
    bnre = get_method(TrainConfig(method="bnre", lmbda=7.0, bce="sum"))
    nre = get_method(TrainConfig(method="nre", lmbda=7.0))
    assert torch.equal(bnre.loss(logits), bnre_loss(logits.joint, logits.marginal, 7.0, bce="sum"))
    assert torch.equal(nre.loss(logits), nre_loss(logits.joint, logits.marginal))  # NRE ignores lambda
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
    from bnre.methods import get_method
    from bnre.methods.config import TrainConfig
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


def test_a_seventh_method_needs_only_its_class_and_the_registry(monkeypatch, tmp_path):
    """docs/methods.md's sketch, registered at run time: it trains through the stacked
    trainer, is saved and loaded, and is evaluated, with no other change."""
    import torch.nn.functional as F

    from bnre import methods
    from bnre.evaluation.evaluate import evaluate
    from bnre.methods.base import Method
    from bnre.methods.model_file import load_ensemble
    from bnre.registry import methods as method_registry
    from bnre.simulation.pairs import Pairs
    from bnre.simulation.simulate import simulate_range
    from bnre.training.train import train_ensemble

    class WeightedNRE(Method):
        name = "wnre"
        options = frozenset({"hidden", "activation", "marginals"})

        def cross_entropy(self, logits):
            joint = -F.logsigmoid(logits.joint).mean(-1)
            marginal = -F.logsigmoid(-logits.marginal).mean(-1)
            return (2 * joint + marginal) / 3

    # its registry line (what TrainConfig and the workflow read), and its class
    monkeypatch.setitem(method_registry.METHODS, "wnre",
                        method_registry.MethodEntry(f"{__name__}:WeightedNRE", WeightedNRE.options))
    monkeypatch.setitem(methods.METHODS, "wnre", WeightedNRE)
    task = get_task("gaussian")
    train = Pairs(*simulate_range(task, "train", 1, 0, 1024), {"task": "gaussian"})
    val = Pairs(*simulate_range(task, "val", 1, 0, 256), {"task": "gaussian"})
    config = TrainConfig(method="wnre", replicates=2, epochs=2, hidden=[16])
    train_ensemble("gaussian", config, train, val, 512, tmp_path / "m.pt", tmp_path / "h.csv", log=lambda _: None)
    loaded_task, members, payload = load_ensemble(tmp_path / "m.pt")
    assert payload["config"]["method"] == "wnre" and len(members) == 2
    theta, x = simulate_range(task, "test", 1, 0, 32)
    result = evaluate(loaded_task, members, theta, x, bins=16)
    assert set(result.metrics.replicate.astype(str)) == {"0", "1", "ensemble"}
