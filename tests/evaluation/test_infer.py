"""Posteriors of observed data (bnre.evaluation.infer), checked against analytic posteriors: the
Gaussian task's (a normal truncated to the box, per parameter) and a conjugate normal
prior's, through the exact ratio."""

import dataclasses
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from bnre.evaluation.adaptive import Refinement
from bnre.evaluation.infer import LEVELS, posterior, read_observations
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian
from exact_ratios import ExactRatio, LikelihoodRatio, NormalPrior


def truncated_marginal(loc, scale, lower=-1.0, upper=1.0):
    return stats.truncnorm((lower - loc) / scale, (upper - loc) / scale, loc=loc, scale=scale)


def test_grid_draws_follow_the_analytic_posterior():
    task = Gaussian()
    x = np.array([[0.3, -0.85]], dtype=np.float32)  # the second posterior is cut by the box
    result = posterior(task, [ExactRatio(task)], x, samples=20000, bins=200, seed=1)
    assert result.sampler == "grid" and result.samples.shape == (1, 20000, 2)
    for d in range(2):
        reference = truncated_marginal(x[0, d], task.sigma)
        assert stats.kstest(result.samples[0, :, d], reference.cdf).pvalue > 1e-3
        # the intervals are the marginal's quantiles, to a fraction of a cell (0.01)
        for j, level in enumerate(LEVELS):
            expected = reference.ppf([(1 - level) / 2, (1 + level) / 2])
            np.testing.assert_allclose(result.intervals[0, d, j], expected, atol=2e-3)
        assert result.medians[0, d] == pytest.approx(reference.median(), abs=2e-3)


def test_mcmc_draws_follow_the_analytic_posterior_beyond_the_grid():
    task = Gaussian()
    x = np.array([[0.3, -0.85]], dtype=np.float32)
    result = posterior(task, [ExactRatio(task)], x, samples=8000, bins=50, seed=2, max_grid_dim=1)
    assert result.sampler == "mcmc" and result.samples.shape == (1, 8000, 2)
    for d in range(2):
        reference = truncated_marginal(x[0, d], task.sigma)
        draws = result.samples[0, :, d]
        assert draws.mean() == pytest.approx(reference.mean(), abs=0.02)
        assert draws.std() == pytest.approx(reference.std(), rel=0.06)
        np.testing.assert_allclose(result.intervals[0, d, 1], reference.ppf([0.05, 0.95]), atol=0.03)


def test_credible_intervals_cover_at_their_nominal_rate():
    task = Gaussian()
    theta, x = simulate_range(task, "test", 11, 0, 2000)
    result = posterior(task, [ExactRatio(task)], x, samples=1, bins=100)
    inside = (result.intervals[..., 0] <= theta[:, :, None]) & (theta[:, :, None] <= result.intervals[..., 1])
    for j, level in enumerate(LEVELS):
        for d in range(2):
            lo, hi = stats.binom.interval(0.999, len(theta), level)
            assert lo <= inside[:, d, j].sum() <= hi, (level, d, inside[:, d, j].mean())


def test_a_non_uniform_prior_gives_the_conjugate_posterior():
    task = NormalPrior()
    x = np.array([[0.1, 0.6]], dtype=np.float32)
    result = posterior(task, [LikelihoodRatio(task)], x, samples=20000, bins=200, seed=3)
    precision = 1 / task.scale**2 + 1 / task.sigma**2
    mean = (task.loc / task.scale**2 + x[0] / task.sigma**2) / precision
    for d in range(2):
        reference = truncated_marginal(mean[d], precision[d] ** -0.5)
        assert stats.kstest(result.samples[0, :, d], reference.cdf).pvalue > 1e-3
        np.testing.assert_allclose(result.intervals[0, d, 2], reference.ppf([0.025, 0.975]), atol=2e-3)


#: A posterior 22 times narrower than a cell of the uniform grid of 90 bins (2 / 90).
NARROW = Gaussian(sigma=0.001)

#: Observations off the coarse grid's edges (-1 + k 2/16), on one (0.125, 0.0), and 0.4
#: sigma from one (0.5004); all many sigma from the box's edges.
NARROW_X = np.array([[0.3, -0.2], [0.125, 0.5004], [-0.6171, 0.0]], dtype=np.float32)


def interval_errors(result, x, sigma):
    """Largest error of the ends of each central interval against N(x, sigma^2)'s, over
    the interval's width, (n, D, L)."""
    errors = np.empty(result.intervals.shape[:-1])
    for j, level in enumerate(LEVELS):
        expected = stats.norm.ppf(np.array([(1 - level) / 2, (1 + level) / 2]), loc=x[..., None], scale=sigma)
        width = expected[..., 1] - expected[..., 0]
        errors[..., j] = np.abs(result.intervals[..., j, :] - expected).max(axis=-1) / width
    return errors


def test_the_adaptive_grid_resolves_a_posterior_narrower_than_a_uniform_cell():
    samples = 20000
    result = posterior(NARROW, [ExactRatio(NARROW)], NARROW_X, samples, seed=1, grid_spec=Refinement())
    assert result.sampler == "grid" and result.samples.shape == (3, samples, 2)
    # measured: at most 0.06% of the width
    assert interval_errors(result, NARROW_X, NARROW.sigma).max() < 0.02
    np.testing.assert_allclose(result.medians, NARROW_X, atol=0.02 * NARROW.sigma)
    draws = result.samples
    np.testing.assert_allclose(draws.mean(axis=1), NARROW_X, atol=5 * NARROW.sigma / np.sqrt(samples))
    np.testing.assert_allclose(draws.std(axis=1), NARROW.sigma, rtol=0.03)
    # the figures' window: the 0.1% and 99.9% quantiles
    np.testing.assert_allclose(result.span, NARROW_X[..., None] + stats.norm.ppf([0.001, 0.999]) * NARROW.sigma,
                               atol=0.02 * NARROW.sigma)


def test_the_uniform_grid_does_not():
    result = posterior(NARROW, [ExactRatio(NARROW)], NARROW_X, 1000, bins=90, seed=1)
    # measured: 2.2 to 8.1 times the width; every interval is one or two cells wide
    assert (interval_errors(result, NARROW_X, NARROW.sigma) > 0.02).all()


def test_observation_files_of_every_format(tmp_path):
    task = Gaussian()
    one = np.array([0.1, 0.2])
    np.save(tmp_path / "one.npy", one)
    np.save(tmp_path / "many.npy", np.stack([one, -one, 2 * one]))
    (tmp_path / "rows.csv").write_text("x1,x2\n0.1,0.2\n-0.1,-0.2\n")
    (tmp_path / "bare.csv").write_text("0.1,0.2\n")
    with h5py.File(tmp_path / "obs.h5", "w") as f:
        f["x"] = one[None]
    assert read_observations(tmp_path / "one.npy", task).shape == (1, 2)
    assert read_observations(tmp_path / "many.npy", task).shape == (3, 2)
    np.testing.assert_allclose(read_observations(tmp_path / "rows.csv", task)[1], -one, rtol=1e-6)
    assert read_observations(tmp_path / "bare.csv", task).shape == (1, 2)
    assert read_observations(tmp_path / "obs.h5", task).dtype == np.float32


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("wrong.npy", np.zeros(3), r"shape \(3,\) do not match task 'gaussian', whose x has shape \(2,\)"),
        ("wrong.csv", "1,2,3\n", r"shape \(1, 3\) do not match"),
        ("nan.npy", np.array([[0.0, 0.0], [np.nan, 1.0]]), r"observation\(s\) \[1\] hold NaN or infinite values"),
        ("inf.csv", "0,inf\n", r"observation\(s\) \[0\] hold NaN or infinite values"),
        ("empty.h5", None, r"no dataset 'x'"),
        ("obs.txt", "0 0\n", r"unknown observation format '\.txt'"),
        ("absent.npy", False, r"does not exist"),
    ],
)
def test_a_bad_observation_is_refused_and_nothing_is_written(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, str):
        path.write_text(content)
    elif content is None:
        h5py.File(path, "w").close()
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_observations(path, Gaussian())
    # the command line refuses it before writing anything
    model = tmp_path / "model.pt"
    _gaussian_model(model)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "bnre", "infer", "--model", str(model), "--observation", str(path),
         "--samples", "10", "--seed", "0", "--samples-output", str(out / "s.csv"), "--intervals-output", str(out / "i.csv"), "--figure", str(out / "c")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2 and "error:" in done.stderr
    assert not out.exists()


def _gaussian_model(path):
    """A small untrained model file of the Gaussian task (what train writes)."""
    from bnre.methods import get_method
    from bnre.methods.config import TrainConfig

    config = TrainConfig.from_dict({"method": "nre", "hidden": [8]})
    torch.manual_seed(0)
    member = get_method(config).estimator(Gaussian())
    torch.save(dict(format=1, task="gaussian", budget=1, config=dataclasses.asdict(config), member_seeds=[0],
                    members=[member.state_dict()], kept_epochs=[0], version="", libraries={}, provenance={}), path)


def test_the_command_line_writes_draws_intervals_and_a_corner_plot(tmp_path):
    model = tmp_path / "model.pt"
    _gaussian_model(model)
    np.save(tmp_path / "obs.npy", np.array([[0.1, 0.2], [0.3, 0.4]]))
    done = subprocess.run(
        [sys.executable, "-m", "bnre", "infer", "--model", str(model), "--observation", str(tmp_path / "obs.npy"),
         "--samples", "500", "--seed", "0", "--options", '{"refine_cells": 2048}', "--samples-output", str(tmp_path / "s.csv"),
         "--intervals-output", str(tmp_path / "i.csv"), "--figure", str(tmp_path / "corner"), "--formats", "png"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    draws = pd.read_csv(tmp_path / "s.csv")
    assert list(draws.columns) == ["task", "seed", "method", "budget", "observation", "draw", "theta_1", "theta_2"]
    assert len(draws) == 2 * 500 and set(draws.observation) == {"obs_0", "obs_1"}
    intervals = pd.read_csv(tmp_path / "i.csv")
    assert len(intervals) == 2 * 2 * len(LEVELS)
    assert (intervals["lower"] < intervals["median"]).all() and (intervals["median"] < intervals["upper"]).all()
    assert (tmp_path / "corner.png").stat().st_size > 1000
