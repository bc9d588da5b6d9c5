"""The calibration-regularised methods (bnre.methods.dcp) and their soft sort, against
references written here from the definitions (Blondel et al. 2020 for the sort, Falkiewicz
et al. 2023 for the regulariser): plain loops in float64, a pool-adjacent-violators of our
own, zuko's forward log density for the flow's draws. benchmarks/dcp_against_lampe.py
compares the same objectives with lampe 0.9's, which needs torchsort (built from source)."""

import math

import numpy as np
import pytest
import torch

from bnre.methods import CalNPE, CalNRE, get_method
from bnre.methods.config import TrainConfig
from bnre.methods.dcp import StraightThroughStep, coverage_regulariser, rank_statistics
from bnre.methods.soft_sort import soft_sort
from bnre.nets.logits import Logits
from bnre.tasks import get_task


def pav_decreasing(y: list[float]) -> list[float]:
    """The non-increasing least-squares fit by pool adjacent violators, written out."""
    blocks: list[list[float]] = []  # [sum, count]
    for value in y:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    return [s / c for s, c in blocks for _ in range(c)]


def reference_soft_sort(values: list[float], strength: float) -> list[float]:
    """Ascending L2 soft sort: minus the projection of rho/eps onto the permutahedron of -v."""
    n = len(values)
    rho = [(n - i) / strength for i in range(n)]
    w = sorted((-v for v in values), reverse=True)
    fit = pav_decreasing([r - x for r, x in zip(rho, w)])
    return [-(r - f) for r, f in zip(rho, fit)]


@pytest.mark.parametrize("strength", [0.01, 0.5, 1.0, 4.0, 50.0])
def test_the_soft_sort_is_the_projection_of_its_definition(strength):
    generator = torch.Generator().manual_seed(1)
    values = torch.randn(4, 30, generator=generator, dtype=torch.float64) * 3
    ours = soft_sort(values, strength)
    for row, out in zip(values, ours):
        assert out.tolist() == pytest.approx(reference_soft_sort(row.tolist(), strength), abs=1e-12)
        assert float(out.sum()) == pytest.approx(float(row.sum()), abs=1e-9)  # the permutahedron keeps the sum
        assert bool((out[1:] >= out[:-1] - 1e-12).all())  # ascending


def test_the_soft_sort_is_the_hard_sort_where_no_gap_exceeds_one_over_the_strength():
    ranks = torch.rand(3, 128, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for strength in (0.1, 1.0):  # ranks in [0, 1]: gaps below 1 <= 1 / strength
        assert torch.allclose(soft_sort(ranks, strength), torch.sort(ranks).values, rtol=0, atol=1e-12)
    assert not torch.allclose(soft_sort(ranks, 30.0), torch.sort(ranks).values)  # pools
    with pytest.raises(ValueError, match="strength must be > 0"):
        soft_sort(ranks, 0.0)


def test_the_soft_sort_s_gradient_is_the_isotonic_regression_s():
    values = (torch.randn(2, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2)
    for strength in (0.3, 3.0):  # gradcheck's small perturbations keep the blocks
        assert torch.autograd.gradcheck(lambda v: soft_sort(v, strength), (values.clone().requires_grad_(),))


def reference_ranks(log_q: np.ndarray, log_q_draws: np.ndarray, log_weights: np.ndarray | None) -> np.ndarray:
    """alpha_i = sum_s w_is 1[q_i > q_is], a loop over pairs and draws."""
    out = np.zeros(len(log_q))
    for i in range(len(log_q)):
        s = log_q_draws.shape[1]
        weights = np.full(s, 1 / s) if log_weights is None else np.exp(log_weights[i] - np.logaddexp.reduce(log_weights[i]))
        out[i] = sum(weights[j] * (math.exp(log_q[i]) > math.exp(log_q_draws[i, j])) for j in range(s))
    return out


def test_rank_statistics_and_their_straight_through_gradient():
    generator = torch.Generator().manual_seed(4)
    log_q = torch.randn(64, generator=generator, dtype=torch.float64).requires_grad_()
    log_q_draws = torch.randn(64, 8, generator=generator, dtype=torch.float64)
    log_weights = torch.randn(64, 8, generator=generator, dtype=torch.float64)
    for weights in (None, log_weights):
        ranks = rank_statistics(log_q, log_q_draws, weights)
        expected = reference_ranks(log_q.detach().numpy(), log_q_draws.numpy(), None if weights is None else weights.numpy())
        assert ranks.detach().numpy() == pytest.approx(expected, abs=1e-12)
    # d(sum_i c_i alpha_i)/d log q_i = q_i sum_s hardtanh(c_i w_is): the step passes its
    # incoming gradient, clipped to [-1, 1], to the difference of densities
    c = 3 * torch.randn(64, generator=generator, dtype=torch.float64)
    (gradient,) = torch.autograd.grad((c * rank_statistics(log_q, log_q_draws, log_weights)).sum(), log_q)
    w = torch.softmax(log_weights, dim=-1)
    expected = log_q.detach().exp() * torch.clamp(c[:, None] * w, -1, 1).sum(-1)
    assert torch.allclose(gradient, expected, atol=1e-12)
    assert rank_statistics(log_q.detach().bfloat16(), log_q_draws.bfloat16()).dtype == torch.float32  # amp
    u = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    step = StraightThroughStep.apply(u)
    assert step.tolist() == [0.0, 0.0, 1.0]
    (g,) = torch.autograd.grad((step * torch.tensor([0.5, -4.0, 2.0])).sum(), u)
    assert g.tolist() == [0.5, -1.0, 1.0]


def test_the_step_on_log_densities_has_the_same_ranks_and_a_gradient_free_of_the_densities_scale():
    """dcp_step: log_density. The same indicator as the density step, and the gradient the
    density step's with the factor q_i removed: d(sum_i c_i alpha_i)/d log q_i =
    sum_s hardtanh(c_i w_is). Shifting every log density by a constant (a narrower
    posterior, or theta in other units) multiplies the density step's gradient by e^shift
    and leaves the log step's unchanged."""
    generator = torch.Generator().manual_seed(14)
    log_q = torch.randn(64, generator=generator, dtype=torch.float64)
    log_q_draws = torch.randn(64, 8, generator=generator, dtype=torch.float64)
    log_weights = torch.randn(64, 8, generator=generator, dtype=torch.float64)
    c = 3 * torch.randn(64, generator=generator, dtype=torch.float64)
    w = torch.softmax(log_weights, dim=-1)
    for weights in (None, log_weights):
        expected = reference_ranks(log_q.numpy(), log_q_draws.numpy(), None if weights is None else weights.numpy())
        assert rank_statistics(log_q, log_q_draws, weights, log_space=True).numpy() == pytest.approx(expected, abs=1e-12)

    def gradients(shift: float, log_space: bool) -> torch.Tensor:
        shifted = (log_q + shift).requires_grad_()
        ranks = rank_statistics(shifted, log_q_draws + shift, log_weights, log_space=log_space)
        return torch.autograd.grad((c * ranks).sum(), shifted)[0]

    clipped = torch.clamp(c[:, None] * w, -1, 1).sum(-1)
    for shift in (0.0, 30.0):
        assert torch.allclose(gradients(shift, True), clipped, atol=1e-12)
        assert torch.allclose(gradients(shift, False), (log_q + shift).exp() * clipped, rtol=1e-10)
    # where exp overflows (float32 beyond log q = 88), the density step compares inf with inf
    log_q32 = torch.tensor([100.0, 95.0]), torch.tensor([[90.0, 99.0], [96.0, 94.0]])
    assert rank_statistics(*log_q32, log_space=True).tolist() == [1.0, 0.5]
    assert rank_statistics(*log_q32).tolist() != [1.0, 0.5]


@pytest.mark.parametrize("name", ["calnre", "calnpe"])
def test_the_methods_step_follows_dcp_step(name):
    """The option reaches the ranks: where log densities go past float32's exp, only the
    log step ranks them."""
    task = get_task("gaussian")
    method = get_method(TrainConfig(method=name, dcp_step="log_density"), task)
    density = get_method(TrainConfig(method=name), task)
    assert "step on log densities" in method.describe() and "log densities" not in density.describe()
    if name == "calnre":
        theta, draws = torch.zeros(2, task.prior.dim), torch.zeros(2, 2, task.prior.dim)
        logits = Logits(torch.tensor([100.0, 95.0]), torch.tensor([[0.0, 90.0, 99.0], [0.0, 96.0, 94.0]]))
        # the draws' importance weights are the softmax of their log ratios (the prior is flat
        # over the draws): the second pair beats only the draw of weight sigmoid(94 - 96)
        expected = pytest.approx([1.0, 1 / (1 + math.exp(2.0))], rel=1e-6)
        assert method.ranked(logits, theta, draws).ranks.tolist() == expected
        assert density.ranked(logits, theta, draws).ranks.tolist() != expected
    else:  # the flow's own draws, weights 1/S
        logits = Logits(torch.tensor([100.0, 95.0]), torch.zeros(2), log_prior=torch.zeros(2),
                        sampled=torch.tensor([[90.0, 99.0], [96.0, 94.0]]))
        assert method.ranked(logits).ranks.tolist() == [1.0, 0.5]
        assert density.ranked(logits).ranks.tolist() != [1.0, 0.5]


def test_the_regulariser_on_uniform_overconfident_and_conservative_ranks():
    n = 128
    uniform = torch.arange(1, n + 1, dtype=torch.float64)[torch.randperm(n, generator=torch.Generator().manual_seed(5))] / n
    for calibration in (False, True):
        assert float(coverage_regulariser(uniform, calibration)) == pytest.approx(0.0, abs=1e-15)
        # the sort's smoothing: pooled neighbours move the ECDF by at most a few levels
        assert float(coverage_regulariser(uniform, calibration, strength=20.0)) < 1e-3
    overconfident, conservative = uniform**2, uniform.sqrt()  # ranks piled low / high
    assert float(coverage_regulariser(overconfident)) > 0.01
    assert float(coverage_regulariser(conservative)) == 0.0
    assert float(coverage_regulariser(conservative, calibration=True)) > 0.01
    # the definition, with a hard sort: mean_j relu(j/N - alpha_(j))^2
    levels = torch.arange(1, n + 1, dtype=torch.float64) / n
    expected = float(torch.relu(levels - torch.sort(overconfident).values).square().mean())
    assert float(coverage_regulariser(overconfident)) == pytest.approx(expected, rel=1e-12)


def pairs(task, n: int, seed: int):
    rng = np.random.default_rng(seed)
    theta = task.prior.sample(n, rng)
    return torch.as_tensor(theta), torch.as_tensor(task.simulate(theta, rng), dtype=torch.float64)


def test_calnre_s_objective_is_the_paper_s():
    """NRE's averaged cross-entropy with roll partners, plus lambda times the conservative
    regulariser of the ranks from self-normalised prior importance samples, computed here
    by loops and hard sorting (ranks in [0, 1] sort exactly at strength 1)."""
    task = get_task("two_moons")
    config = TrainConfig(method="calnre", hidden=[32, 32], dcp_samples=6, dcp_lambda=7.0)
    method = get_method(config, task)
    torch.manual_seed(0)
    estimator = method.estimator(task).double()
    theta, x = pairs(task, 48, 6)
    draws = torch.as_tensor(task.prior.sample(48 * 6, np.random.default_rng(7))).reshape(48, 6, 2)
    loss = method.loss(method.logits(estimator, theta, x, None, draws))

    with torch.no_grad():
        log_r = estimator(theta, x)
        log_r_marginal = estimator(torch.roll(theta, 1, 0), x)
        log_r_draws = torch.stack([estimator(draws[:, s], x) for s in range(6)], dim=1)
    cross_entropy = -(torch.nn.functional.logsigmoid(log_r).mean() + torch.nn.functional.logsigmoid(-log_r_marginal).mean()) / 2
    log_prior = float(task.prior.log_prob(theta[:1]))  # uniform
    ranks = reference_ranks((log_r + log_prior).numpy(), (log_r_draws + log_prior).numpy(), log_r_draws.numpy())
    levels = np.arange(1, 49) / 48
    regulariser = np.mean(np.maximum(levels - np.sort(ranks), 0) ** 2)
    assert float(loss.detach()) == pytest.approx(float(cross_entropy) + 7.0 * regulariser, rel=1e-10)
    assert isinstance(method, CalNRE) and method.regulariser_weight() == 7.0


def test_calnpe_s_draws_and_objective_are_the_flow_s():
    """The log density of the flow's reparameterised draws (inverse pass and its Jacobian)
    equals zuko's log_prob at those draws (forward pass), and the objective is NPE's
    negative log-likelihood plus lambda times the regulariser of the draws' ranks."""
    task = get_task("two_moons")
    config = TrainConfig(method="calnpe", flow_transforms=2, flow_hidden=[16, 16], dcp_samples=5,
                         dcp_calibration=True)
    method = get_method(config, task)
    torch.manual_seed(1)
    estimator = method.estimator(task).double()
    theta, x = pairs(task, 32, 8)
    noise = torch.randn(32, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    logits = estimator(theta, x, theta[:, None, :0], noise)
    with torch.no_grad():
        embedding = estimator.embed(x)
        distribution = estimator.flow(embedding[:, None].expand(32, 5, -1))
        z = distribution.transform.inv(noise)  # the draws, in the flow's rescaled parameters
        draws = estimator.theta_shift + estimator.theta_scale * z
        log_q_draws = estimator.log_density(draws, embedding[:, None])
        log_q = estimator.log_density(theta, embedding)
    assert torch.allclose(logits.sampled, log_q_draws, atol=1e-9)
    loss = method.loss(method.logits(estimator, theta, x, None, noise))
    ranks = reference_ranks(log_q.numpy(), log_q_draws.numpy(), None)
    levels = np.arange(1, 33) / 32
    regulariser = np.mean((levels - np.sort(ranks)) ** 2)  # calibrated: two-sided
    assert float(loss.detach()) == pytest.approx(-float(log_q.mean()) + 1.0 * regulariser, rel=1e-9)
    assert isinstance(method, CalNPE) and method.regulariser_weight() == 1.0  # lampe's DCPNPELoss default


@pytest.mark.parametrize("name", ["calnre", "calnpe"])
def test_the_regulariser_s_gradient_reaches_the_estimator(name):
    task = get_task("two_moons")
    config = TrainConfig(method=name, hidden=[16], flow_transforms=1, flow_hidden=[16], dcp_samples=4,
                         dcp_calibration=True)
    method = get_method(config, task)
    torch.manual_seed(2)
    estimator = method.estimator(task)
    theta, x = pairs(task, 64, 10)
    theta, x = theta.float(), x.float()
    draws = method.draws([11], [0], epoch=1, step=0, n=64, device="cpu")[0]
    penalty = method.penalty(method.logits(estimator, theta, x, None, draws))
    assert float(penalty.detach()) > 0
    grads = torch.autograd.grad(penalty, [p for p in estimator.parameters()], allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


@pytest.mark.parametrize("name", ["calnre", "calnpe"])
def test_draws_depend_on_the_member_epoch_and_step_only(name):
    task = get_task("slcp")
    method = get_method(TrainConfig(method=name, dcp_samples=3), task)
    both = method.draws([5, 6], [0, 1], epoch=2, step=7, n=10, device="cpu")
    assert both.shape == (2, 10, 3, task.prior.dim)
    assert torch.equal(method.draws([5, 6], [1], epoch=2, step=7, n=10, device="cpu")[0], both[1])
    assert not torch.equal(method.draws([5, 6], [1], epoch=2, step=8, n=10, device="cpu")[0], both[1])
    if name == "calnre":  # prior draws, inside the box
        lower, upper = torch.as_tensor(task.prior.lower), torch.as_tensor(task.prior.upper)
        assert bool(((both >= lower.float()) & (both <= upper.float())).all())
    theta = torch.zeros(9, task.prior.dim)
    partners = method.validation_partners(theta)
    assert partners.shape == (9, 4, task.prior.dim)
    assert torch.equal(partners, method.validation_partners(theta))  # fixed across epochs


@pytest.mark.parametrize("options, message", [
    (dict(method="calnre", dcp_samples=0), "dcp_samples must be >= 1"),
    (dict(method="calnpe", dcp_lambda=-1.0), "dcp_lambda must be >= 0"),
    (dict(method="calnre", dcp_sort_strength=0.0), "dcp_sort_strength must be > 0"),
    (dict(method="calnpe", dcp_step="log"), r"dcp_step must be one of \('density', 'log_density'\), got 'log'"),
    (dict(method="npe", dcp_step="log_density"), "method 'npe' has no calibration regulariser, but got dcp_step='log_density'"),
    (dict(method="nre", dcp_calibration=True),
     "method 'nre' has no calibration regulariser, but got dcp_calibration=True; these options belong to calnre, calnpe"),
    (dict(method="bnpe", dcp_samples=4), "method 'bnpe' has no calibration regulariser"),
])
def test_bad_calibration_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_the_calibrated_methods_need_their_task_to_draw():
    method = get_method(TrainConfig(method="calnre"))
    with pytest.raises(ValueError, match=r"calnre draws from the prior: build the method with its task"):
        method.draws([1], [0], 1, 0, 4, "cpu")
