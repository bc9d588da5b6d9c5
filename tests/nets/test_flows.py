"""Posterior estimators: a conditional flow's density, its implied ratio and its draws,
against the change of variables and the Gaussian task's analytic posterior."""

import math

import numpy as np
import pytest
import torch

from bnre.evaluation.coverage import grid
from bnre.evaluation.ensemble import Ensemble
from bnre.evaluation.evaluate import log_posterior_on
from bnre.methods import build_posterior_estimator, get_method
from bnre.methods.config import TrainConfig
from bnre.nets.flows import PosteriorEstimator
from bnre.sampling import member_seed, member_subset
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task
from bnre.training.fit import fit_ensemble

BINS = 64


def _cells(task):
    cells, _ = grid(task.lower, task.upper, BINS)
    volume = float(np.prod((task.upper - task.lower) / BINS))
    return cells, volume


def test_untrained_flow_is_a_density_of_theta():
    """The rescaling's Jacobian is accounted for: on a box wide enough to hold the flow's
    mass, the density of theta integrates to 1 (the flow's base is a standard normal, and
    rescaled theta = shift + scale z)."""
    task = get_task("gaussian")
    torch.manual_seed(0)
    estimator = build_posterior_estimator(task, TrainConfig(method="npe", flow_transforms=2, flow_hidden=[16, 16]))
    embedding = estimator.embed(torch.zeros(1, 2))
    edges = torch.linspace(-6, 6, 481)  # 6 = six scales (1) of the rescaled box: the untrained flow is ~N(0, 1) in z
    centres = (edges[1:] + edges[:-1]) / 2
    theta = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        mass = estimator.log_density(theta, embedding).exp().sum() * (12 / 480) ** 2
    assert float(mass) == pytest.approx(1.0, abs=2e-3)


@pytest.fixture(scope="module")
def trained_gaussian():
    task = get_task("gaussian")
    train = Pairs(*simulate_range(task, "train", 1, 0, 8192), {"task": "gaussian"})
    val = Pairs(*simulate_range(task, "val", 1, 0, 1024), {"task": "gaussian"})
    config = TrainConfig(method="npe", replicates=1, epochs=40, batch_size=256, flow_transforms=3, flow_hidden=[64, 64],
                         lr=3e-3)
    seeds = [member_seed(config.seed, task.name, 8192, 0)]
    torch.manual_seed(seeds[0])
    estimators = [get_method(config).estimator(task)]
    subsets = [member_subset(seeds[0], len(train), 8192)]
    states, _ = fit_ensemble(task, estimators, seeds, subsets, train, val, config, log=lambda _: None)
    estimators[0].load_state_dict(states[0])
    return task, estimators[0].eval()


def test_trained_flow_recovers_the_analytic_posterior(trained_gaussian):
    """On the grid: the flow's mass on the prior box is about 1 (its posterior lies inside
    it), its normalised grid posterior is close to the exact truncated normal (KL and TV),
    and its implied log-ratio plus the log prior is its log density."""
    task, estimator = trained_gaussian
    theta_star, x = simulate_range(task, "test", 1, 0, 32)
    x = torch.as_tensor(x)
    cells, volume = _cells(task)
    with torch.no_grad():
        embedding = estimator.embed(x)[:, None, :]
        log_q = estimator.log_density(cells[None], embedding)  # (n, G)
        mass = log_q.exp().sum(-1) * volume
        exact = task.log_posterior(cells[None], x[:, None, :])
        implied = estimator.head_log_ratio(cells[None], embedding) + task.prior.log_prob(cells)[None]
    assert torch.allclose(implied, log_q, atol=1e-4)
    # the exact posterior's own mass in the box is 1; the flow leaks some outside it where
    # the posterior is cut by the box's edge
    assert float((exact.exp().sum(-1) * volume).mean()) == pytest.approx(1.0, abs=0.01)
    assert 0.8 < float(mass.min()) and float(mass.mean()) > 0.93 and float(mass.max()) < 1.02, mass
    p = torch.softmax(exact, -1)
    q = torch.softmax(log_q, -1)
    kl = (p * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(-1)
    tv = 0.5 * (p - q).abs().sum(-1)
    # a wrong posterior fails these: the exact one with sigma 30% too wide has KL 0.10
    # (measured; the flow, after 40 epochs, about 0.04, most of it at the box's edges)
    wide = torch.softmax(task.log_posterior(cells[None], x[:, None, :], scale=1.3), -1)
    kl_wide = (p * (p.clamp_min(1e-30).log() - wide.clamp_min(1e-30).log())).sum(-1)
    assert float(kl.mean()) < 0.05 < float(kl_wide.mean()), (float(kl.mean()), float(kl_wide.mean()))
    assert float(tv.mean()) < 0.1


def test_draws_are_the_grid_posterior_restricted_to_the_box(trained_gaussian):
    """Native draws lie inside the box and match the grid posterior's moments (common
    evaluation path: Ensemble + log_posterior_on)."""
    task, estimator = trained_gaussian
    _, x = simulate_range(task, "test", 1, 100, 103)
    x = torch.as_tensor(x)
    x[0] = torch.tensor([0.95, -0.97])  # a posterior cut by the box's edge
    ensemble = Ensemble([estimator], x)
    cells, volume = _cells(task)
    with torch.no_grad():
        log_post = log_posterior_on(ensemble, task)(cells[None], slice(0, 3))[-1]  # (n, G)
    weights = torch.softmax(log_post, -1)
    mean = weights @ cells
    generator = torch.Generator().manual_seed(0)
    for i in range(3):
        draws = estimator.sample(ensemble.embeddings[0, i], 20000, generator)
        assert draws.shape == (20000, 2)
        assert bool(((draws >= torch.as_tensor(task.lower, dtype=torch.float32))
                     & (draws <= torch.as_tensor(task.upper, dtype=torch.float32))).all())
        # the grid's piecewise-constant cells (width 2/64) add ~0.01 of discretisation
        assert torch.allclose(draws.double().mean(0), mean[i].double(), atol=0.015), (i, draws.mean(0), mean[i])
    again = estimator.sample(ensemble.embeddings[0, 1], 100, torch.Generator().manual_seed(0))
    assert torch.equal(again, estimator.sample(ensemble.embeddings[0, 1], 100, torch.Generator().manual_seed(0)))


def test_rejection_that_cannot_reach_the_box_is_refused():
    task = get_task("gaussian")
    torch.manual_seed(0)
    estimator = PosteriorEstimator(task.prior, torch.nn.Flatten(), 2, transforms=1, hidden=[4])
    with torch.no_grad():  # push every draw far outside the box
        estimator.theta_shift += 100.0
    with pytest.raises(ValueError, match="outside the prior box"):
        estimator.sample(torch.zeros(2), 10)


def test_unknown_flow_is_refused():
    task = get_task("gaussian")
    with pytest.raises(ValueError, match="unknown flow 'glow'"):
        PosteriorEstimator(task.prior, torch.nn.Flatten(), 2, flow="glow")


def test_maf_flow_is_a_density_too():
    task = get_task("gaussian")
    torch.manual_seed(0)
    estimator = PosteriorEstimator(task.prior, torch.nn.Flatten(), 2, flow="maf", transforms=2, hidden=[8])
    theta = torch.zeros(5, 2)
    with torch.no_grad():
        value = estimator.head_log_ratio(theta, estimator.embed(torch.zeros(5, 2)))
    assert value.shape == (5,) and bool(torch.isfinite(value).all())
    assert math.isfinite(float(estimator.log_prior(torch.full((1, 2), 9.0))))  # clamped: finite outside


def test_ranks_from_the_flow_s_own_draws_agree_with_the_adaptive_grid(trained_gaussian):
    """The rank from S exact draws is binomial about the grid's: |r_S - r| within 4 of its
    standard errors sqrt(r (1 - r) / S) for every pair (plus the grid's own error), and their
    means within 3 standard errors; members and the ensemble (the mixture) alike."""
    from bnre.evaluation.adaptive import Refinement
    from bnre.evaluation.evaluate import evaluate

    task, estimator = trained_gaussian
    theta, x = simulate_range(task, "test", 3, 0, 60)
    draws = 2000
    grid_pairs = evaluate(task, [estimator, estimator], theta, x, 90, grid_spec=Refinement(cells=4096)).pairs
    sample_pairs = evaluate(
        task, [estimator, estimator], theta, x, 90, coverage="samples", mc_samples=draws, grid_spec=Refinement(cells=4096)
    ).pairs
    for replicate in ("0", "1", "ensemble"):
        r = grid_pairs[grid_pairs.replicate == replicate]["rank"].to_numpy()
        r_s = sample_pairs[sample_pairs.replicate == replicate]["rank"].to_numpy()
        error = np.sqrt(np.clip(r * (1 - r), 1 / draws, None) / draws)
        assert (np.abs(r_s - r) <= 4 * error + 2e-3).all()
        assert abs((r_s - r).mean()) <= 3 * np.sqrt((error**2).sum()) / len(r) + 1e-3


def test_ranks_from_own_draws_are_refused_for_a_ratio_estimator():
    from bnre.evaluation.evaluate import evaluate
    from bnre.methods import build_estimator

    task = get_task("gaussian")
    theta, x = simulate_range(task, "test", 3, 0, 4)
    with pytest.raises(ValueError, match="posterior estimator"):
        evaluate(task, [build_estimator(task, [8], "SELU")], theta, x, 16, coverage="samples")
