"""Spatial SIR: the lattice epidemic against the properties of its definition."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from bnre.methods import build_estimator
from bnre.tasks import SpatialSIR

REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "reference" / "spatial_sir.py"
#: E[number of distinct cells] among 1 + Poisson(3) uniform draws with replacement of 2500.
DISTINCT_INITIAL = 4.0 - 0.0036


@pytest.fixture(scope="module")
def task():
    return SpatialSIR()


def simulate(task, beta, gamma, n, seed):
    return task.simulate(np.tile([[beta, gamma]], (n, 1)), np.random.default_rng(seed))


def counts(x):
    """Numbers of S, I and R cells, (N, 3)."""
    return x.sum(axis=(2, 3))


def test_every_cell_is_in_exactly_one_state(task):
    x = task.simulate(task.prior.sample(256, np.random.default_rng(0)), np.random.default_rng(1))
    assert x.dtype == np.float32
    assert np.all((x == 0) | (x == 1))
    assert np.all(x.sum(axis=1) == 1)


def test_certain_recovery_without_infection_leaves_the_initial_cells_recovered(task):
    x = simulate(task, 0.0, 1.0, 4000, 2)
    s, i, r = counts(x).T
    assert np.all(i == 0)
    assert np.all((r >= 1) & (r <= 20)) and np.all(s + r == 2500)
    assert r.mean() == pytest.approx(DISTINCT_INITIAL, abs=4 * np.sqrt(3 / 4000))


def test_no_transmission_no_new_infections(task):
    x = simulate(task, 0.0, 0.1, 4000, 3)
    s, i, r = counts(x).T
    touched = i + r
    assert np.all(touched >= 1)
    assert touched.mean() == pytest.approx(DISTINCT_INITIAL, abs=4 * np.sqrt(3 / 4000))
    # P(still infected after 100 steps) = 0.9^100: essentially everybody recovered
    assert i.sum() <= 2


def test_no_recovery_keeps_everybody_infected(task):
    s, i, r = counts(simulate(task, 0.7, 0.0, 200, 4)).T
    assert np.all(r == 0)
    assert i.mean() > 500  # without recovery the epidemic spreads for all 100 steps


def test_higher_transmission_more_recovered(task):
    recovered = [counts(simulate(task, beta, 0.3, 1000, 5 + k))[:, 2].mean() for k, beta in enumerate((0.2, 0.5, 0.9))]
    assert recovered[0] < recovered[1] < recovered[2]


def test_agrees_in_law_with_the_reference(task):
    if not REFERENCE.exists():
        pytest.skip("no reference loop")
    spec = importlib.util.spec_from_file_location("sir_reference", REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    theta = np.array([0.6, 0.2])
    rng = np.random.default_rng(6)
    expected = counts(np.stack([reference.simulate_one_numpy(theta, rng) for _ in range(250)]))
    observed = counts(simulate(task, *theta, 2000, 7))
    se = np.sqrt(expected.var(0) / len(expected) + observed.var(0) / len(observed))
    assert np.all(np.abs(observed.mean(0) - expected.mean(0)) < 4 * se)
    # and the literal cell loop runs (on a short epidemic)
    x = reference.simulate_one(np.array([0.2, 0.9]), rng)
    assert x.shape == task.x_shape and np.all(x.sum(0) == 1)


def test_cells_unseen_in_training_do_not_swamp_the_network(task):
    # with 64 training images many cells are never infected at the end: x_std hits its
    # 1e-6 floor there, and a test image infected there has a 1e6 z-score
    estimator = build_estimator(task, [8, 8], "SELU")
    train = torch.as_tensor(task.simulate(task.prior.sample(64, np.random.default_rng(8)), np.random.default_rng(9)))
    estimator.set_standardisation(train)
    assert (estimator.x_std == 1e-6).any()
    # such a spike must not wipe out the rest of the image (it would through group norm)
    torch.manual_seed(0)
    a, b = torch.randn(2, 16, *task.x_shape)
    spike = torch.zeros(task.x_shape)
    spike[1, 20, 30] = 1e6
    with torch.no_grad():
        apart = (estimator.embedding(a) - estimator.embedding(b)).norm(dim=-1)
        spiked = (estimator.embedding(a + spike) - estimator.embedding(b + spike)).norm(dim=-1)
    assert torch.all(spiked > 0.5 * apart)


def test_embedding_shape(task):
    embedding = task.embedding()
    x = torch.randn(2, 3, *task.x_shape)
    assert embedding(x).shape == (2, 3, task.embedding_features())
