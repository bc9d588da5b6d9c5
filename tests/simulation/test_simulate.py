"""Seeded block simulation: determinism, independence, block-size invariance."""

import numpy as np
import pytest

from bnre.simulation.simulate import CHUNK, blocks, simulate_range
from bnre.tasks import get_task


@pytest.mark.parametrize("name", ["gaussian", "slcp"])
def test_same_seed_same_arrays(name):
    task = get_task(name)
    a = simulate_range(task, "train", 7, 0, 600)
    b = simulate_range(task, "train", 7, 0, 600)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    c = simulate_range(task, "train", 8, 0, 600)
    assert not np.array_equal(a[0], c[0])


def test_result_does_not_depend_on_block_cut():
    task = get_task("slcp")
    whole_theta, whole_x = simulate_range(task, "val", 3, 0, 1000)
    for size in (1, 100, CHUNK, 333):
        parts = [simulate_range(task, "val", 3, a, b) for a, b in blocks(1000, size)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), whole_theta)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), whole_x)


def test_splits_and_chunks_are_independent_streams():
    task = get_task("gaussian")
    theta_train, _ = simulate_range(task, "train", 1, 0, 4 * CHUNK)
    theta_test, _ = simulate_range(task, "test", 1, 0, 4 * CHUNK)
    assert not np.array_equal(theta_train, theta_test)
    # no correlation between splits, nor between consecutive chunks of one split
    assert abs(np.corrcoef(theta_train[:, 0], theta_test[:, 0])[0, 1]) < 0.1
    first, second = theta_train[:CHUNK, 0], theta_train[CHUNK : 2 * CHUNK, 0]
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.2
    assert len(np.unique(theta_train[:, 0])) == len(theta_train)


def test_tasks_use_different_streams():
    a, _ = simulate_range(get_task("gaussian"), "train", 1, 0, 10)
    b, _ = simulate_range(get_task("slcp"), "train", 1, 0, 10)
    assert not np.allclose(a / 1.0, b / 3.0)


def test_float32_output_and_empty_range():
    theta, x = simulate_range(get_task("slcp"), "test", 1, 5, 5)
    assert theta.shape == (0, 2) and x.shape == (0, 8)
    theta, x = simulate_range(get_task("slcp"), "test", 1, 0, 3)
    assert theta.dtype == x.dtype == np.float32


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        simulate_range(get_task("slcp"), "dev", 1, 0, 10)
    with pytest.raises(ValueError, match="invalid range"):
        simulate_range(get_task("slcp"), "test", 1, 10, 5)
    with pytest.raises(ValueError, match="block_size"):
        blocks(10, 0)


def test_non_finite_simulations_are_refused_with_their_parameters():
    task = get_task("gaussian")

    class Broken(type(task)):
        def simulate(self, theta, rng):
            x = super().simulate(theta, rng)
            x[theta[:, 0] > 0.5] = np.nan
            return x

    with pytest.raises(FloatingPointError, match="non-finite observations.*theta="):
        simulate_range(Broken(), "train", 1, 0, 100)


def test_raising_simulator_names_the_parameters():
    task = get_task("gaussian")

    class Raising(type(task)):
        def simulate(self, theta, rng):
            if np.any(theta[:, 0] > 0.9):
                raise ArithmeticError("boom")
            return super().simulate(theta, rng)

    with pytest.raises(RuntimeError, match=r"failed on chunk 0 of split 'train' \(ArithmeticError\('boom'\)\); it fails alone at theta=\[0\.9"):
        simulate_range(Raising(), "train", 1, 0, 100)
