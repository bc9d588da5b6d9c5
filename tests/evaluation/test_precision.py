"""Mixed-precision grid evaluation (bnre.evaluation.precision): bf16 ranks refined to float32's."""

import numpy as np
import pytest
import torch

import bnre.evaluation.precision as precision
from bnre.evaluation.coverage import grid, grid_ranks
from bnre.evaluation.diagnostics import exact_log_posterior
from bnre.evaluation.evaluate import evaluate
from bnre.evaluation.low_precision_head import LowPrecisionHead
from bnre.evaluation.precision import GridPrecision, MixedPrecisionGrid, cells_to_refine, rank_bound
from bnre.methods import get_method
from bnre.methods.config import TrainConfig
from bnre.sampling import member_seed, member_subset
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import get_task
from bnre.training.fit import fit_ensemble


def exact_grid(task, n=64):
    """The Gaussian task's exact log posterior (float32) on its test pairs, the truth's value."""
    theta, x = simulate_range(task, "test", 3, 0, n)
    theta, x = torch.as_tensor(theta), torch.as_tensor(x)
    exact64 = exact_log_posterior(task, x)

    def exact(t, rows):
        return exact64(t, rows).float()

    log_true = exact(theta[:, None], slice(0, n))[..., 0]
    return theta, exact, log_true


def at_pairs(exact):
    """``at(theta (P, D), obs (P,))`` from a grid log density, one pair at a time."""

    def at(theta, obs):
        return torch.stack([exact(t[None, None], slice(int(i), int(i) + 1))[:, 0, 0] for t, i in zip(theta, obs)], dim=-1)

    return at


def test_worst_case_perturbation_moves_ranks_and_refinement_restores_them():
    """Every denser cell pushed up and every other down by 0.45 delta: the largest rank shift a
    delta-bounded error can cause; refined ranks must be within the tolerance of the exact ones."""
    task = get_task("gaussian")
    theta, exact, log_true = exact_grid(task)
    cells, _ = grid(task.lower, task.upper, 40)
    delta, tolerance = 0.2, 1e-4
    shift = 0.45 * delta

    def low(t, rows):
        value = exact(t, rows)
        return value + shift * torch.sign(value - log_true[:, rows, None])

    exact_ranks, exact_log_z = grid_ranks(exact, theta, cells)
    perturbed_ranks, _ = grid_ranks(low, theta, cells)
    assert (perturbed_ranks - exact_ranks).abs().max() > 100 * tolerance  # the perturbation matters
    mixed = MixedPrecisionGrid(exact, low, at_pairs(exact), GridPrecision("bf16", delta, tolerance, check_cells=16))
    ranks, log_z = grid_ranks(mixed, theta, cells)
    assert (ranks - exact_ranks).abs().max() <= tolerance
    assert (log_z - exact_log_z).abs().max() <= mixed.precision.log_z_tolerance
    assert mixed.counts.fallbacks == 0
    assert 0 < mixed.counts.refined_fraction < 1


def test_uncertain_cells_are_refined_and_the_bound_of_what_is_left_holds():
    generator = torch.Generator().manual_seed(0)
    log_grid = 3 * torch.randn(3, 5, 500, generator=generator)
    log_true = log_grid[..., 7] + 0.01  # the truth sits among the cells
    delta, tolerance = 0.1, 1e-3
    mask = cells_to_refine(log_grid, log_true, delta, tolerance, log_z_tolerance=1e-2)
    uncertain = ((log_grid - log_true[..., None]).abs() <= delta).any(dim=0)
    assert (mask | ~uncertain).all()  # every uncertain cell is refined
    bound = rank_bound(log_grid, log_true, mask.expand_as(log_grid), delta)
    assert (bound <= tolerance * (1 + 1e-9)).all()
    unrefined = (torch.softmax(log_grid.double(), -1) * ~mask).sum(-1)
    assert (precision.log_z_bound(unrefined, delta) <= 1e-2 * (1 + 1e-9)).all()
    assert (rank_bound(log_grid, log_true, torch.zeros_like(log_grid, dtype=torch.bool), delta) > tolerance).any()
    assert not mask.all()


@pytest.fixture(scope="module")
def slcp_members():
    task = get_task("slcp")
    train = Pairs(*simulate_range(task, "train", 1, 0, 2048), {"task": "slcp"})
    val = Pairs(*simulate_range(task, "val", 1, 0, 256), {"task": "slcp"})
    config = TrainConfig(method="nre", replicates=2, epochs=6, hidden=[64, 64, 64], batch_size=128)
    seeds = [member_seed(1, "slcp", 2048, k) for k in range(2)]
    members = []
    for s in seeds:
        torch.manual_seed(s)
        members.append(get_method(config).estimator(task))
    subsets = [member_subset(s, len(train), 2048, 1) for s in seeds]
    states, _ = fit_ensemble(task, members, seeds, subsets, train, val, config, log=lambda _: None)
    for member, state in zip(members, states):
        member.load_state_dict(state)
        member.eval()
    theta, x = simulate_range(task, "test", 1, 0, 24)
    return task, members, theta, x


def metric(evaluation, name, replicate="ensemble"):
    m = evaluation.metrics
    return float(m[(m.metric == name) & (m.replicate == replicate)].value.iloc[0])


def ranks_of(evaluation):
    p = evaluation.pairs
    return np.stack([p[p.replicate == r]["rank"].to_numpy() for r in ("0", "1", "ensemble")])


def test_refined_bf16_ranks_of_a_trained_estimator_equal_float32(slcp_members):
    task, members, theta, x = slcp_members
    full = evaluate(task, members, theta, x, 32)
    mixed = evaluate(task, members, theta, x, 32, precision=GridPrecision("bf16", delta=0.2, tolerance=1e-4))
    assert metric(full, "grid_bf16") == 0 and metric(mixed, "grid_bf16") == 1
    assert np.abs(ranks_of(mixed) - ranks_of(full)).max() <= 1e-4
    assert abs(metric(mixed, "coverage_auc") - metric(full, "coverage_auc")) <= 1e-4
    assert abs(metric(mixed, "log_posterior") - metric(full, "log_posterior")) <= 1e-3
    assert 0 < metric(mixed, "grid_bf16_max_error") <= 0.1  # the bf16 path ran, and was checked
    assert metric(mixed, "grid_fallback_fraction") == 0
    # the plain bf16 grid, unrefined, is measurably off: the refinement is what makes it exact
    head = LowPrecisionHead(members[0])
    cells, _ = grid(task.lower, task.upper, 32)
    embedding = members[0].embed(torch.as_tensor(x[:4]))
    with torch.no_grad():
        error = head(cells[None], embedding[:, None]) - members[0].head_log_ratio(cells[None], embedding[:, None])
    assert error.abs().max() > 1e-3


def test_a_delta_below_the_measured_error_falls_back_to_float32(slcp_members):
    task, members, theta, x = slcp_members
    full = evaluate(task, members, theta, x, 32)
    mixed = evaluate(task, members, theta, x, 32, precision=GridPrecision("bf16", delta=1e-6))
    assert metric(mixed, "grid_fallback_fraction") == 1
    assert metric(mixed, "grid_refined_fraction") == 1
    np.testing.assert_array_equal(ranks_of(mixed), ranks_of(full))


@pytest.mark.parametrize("capable", [False, True])
def test_auto_takes_bf16_only_where_the_hardware_has_it(slcp_members, monkeypatch, capable):
    task, members, theta, x = slcp_members
    monkeypatch.setattr(precision, "bf16_capable", lambda device: capable)
    evaluation = evaluate(task, members, theta[:4], x[:4], 16, precision=GridPrecision("auto"))
    assert metric(evaluation, "grid_bf16") == float(capable)
    assert GridPrecision("float32").uses_bf16("cpu") is False


def test_heads_without_a_bf16_form_stay_in_float32(monkeypatch):
    task = get_task("gaussian")
    config = TrainConfig(method="npe", hidden=[16], flow_hidden=[16], flow_transforms=1)
    torch.manual_seed(0)
    flow = get_method(config).estimator(task).eval()
    assert not LowPrecisionHead.applies(flow)
    theta, x = simulate_range(task, "test", 1, 0, 4)
    evaluation = evaluate(task, [flow], theta, x, 8, precision=GridPrecision("bf16"))
    assert metric(evaluation, "grid_bf16") == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="fp16"), "unknown grid precision 'fp16'"),
        (dict(delta=0.0), "delta must be > 0"),
        (dict(tolerance=1.0), "tolerance must be in"),
        (dict(check_cells=0), "check_cells must be >= 1"),
        (dict(log_z_tolerance=-1.0), "log_z_tolerance must be > 0"),
    ],
)
def test_bad_precision_options_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GridPrecision(**kwargs)
