"""Lotka–Volterra: the jump chain against the properties of its definition."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from bnre.tasks import LotkaVolterra

REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "reference" / "lotka_volterra.py"


@pytest.fixture(scope="module")
def task():
    return LotkaVolterra()


@pytest.fixture(scope="module")
def chains(task):
    """(theta, x) for 512 prior draws."""
    theta = task.prior.sample(512, np.random.default_rng(0))
    return theta, task.simulate(theta, np.random.default_rng(1))


def test_counts_are_non_negative_integers(chains):
    _, x = chains
    assert x.dtype == np.float32
    assert np.all(x >= 0)
    assert np.array_equal(x, np.round(x))
    # one change per step bounds the counts: no overflow whatever the rates
    assert np.all(x[..., 0] <= 50 + 1001) and np.all(x[..., 1] <= 100 + 1001)


def test_each_step_moves_one_species_by_one_unless_extinct(chains):
    _, x = chains
    initial = np.broadcast_to(np.array([50.0, 100.0], np.float32), (len(x), 1, 2))
    steps = np.diff(np.concatenate([initial, x], axis=1), axis=1)  # (N, 1001, 2)
    moved = np.abs(steps).sum(-1)
    before = np.concatenate([initial, x[:, :-1]], axis=1)
    extinct = (before == 0).all(-1)
    assert extinct.any()
    assert np.all(moved[~extinct] == 1)
    assert np.all(moved[extinct] == 0)  # (0, 0) is absorbing: the rows stay at zero


def test_without_predators_prey_only_grow(chains):
    _, x = chains
    # X = 0 < Y leaves a single reaction, Y + 1
    before, after = x[:, :-1], x[:, 1:]
    lonely = (before[..., 0] == 0) & (before[..., 1] > 0)
    assert lonely.any()
    assert np.all(after[..., 0][lonely] == 0)
    assert np.all(after[..., 1][lonely] == before[..., 1][lonely] + 1)


def test_dominant_predator_death_makes_predators_extinct(task):
    # k1 = e^-4 (births), k2 = e (deaths): predators die out for most prey rates
    x = task.simulate(np.tile([[-4.0, 1.0]], (1000, 1)), np.random.default_rng(2))
    assert np.mean(x[:, -1, 0] == 0) > 0.85
    # and the opposite rates make them thrive
    x = task.simulate(np.tile([[1.0, -4.0]], (1000, 1)), np.random.default_rng(3))
    assert np.median(x[:, -1, 0]) > 500


def test_first_reaction_frequencies_match_rates(task):
    # P(first reaction) = E_psi[rate_r / total] at X = 50, Y = 100, psi ~ prior
    theta = np.array([-0.5, -1.5])
    x = task.simulate(np.tile(theta, (20_000, 1)), np.random.default_rng(4))
    first = x[:, 0] - [50.0, 100.0]
    observed = [np.mean((first == d).all(-1)) for d in ([1, 0], [-1, 0], [0, 1], [0, -1])]
    psi = np.random.default_rng(5).uniform(-4, 1, (1_000_000, 2))
    k = np.exp(np.concatenate([np.tile(theta, (len(psi), 1)), psi], axis=1))
    rates = k * [50 * 100, 50, 100, 50 * 100]
    expected = (rates / rates.sum(1, keepdims=True)).mean(0)
    assert np.allclose(observed, expected, atol=0.015)  # >= 4 standard errors


def test_matches_the_one_at_a_time_reference(task):
    if not REFERENCE.exists():
        pytest.skip("no reference loop")
    spec = importlib.util.spec_from_file_location("lv_reference", REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    thetas = task.prior.sample(8, np.random.default_rng(6))
    for seed, theta in enumerate(thetas):
        batched = task.simulate(theta[None], np.random.default_rng(seed))[0]
        assert np.array_equal(batched, reference.simulate_one(theta, np.random.default_rng(seed)))


def test_embedding_shape(task):
    embedding = task.embedding()
    x = torch.randn(2, 3, *task.x_shape)
    assert embedding(x).shape == (2, 3, task.embedding_features())
