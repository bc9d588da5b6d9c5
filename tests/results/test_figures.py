"""Figures of the tidy tables (bnre.results.figures) and the methods' names and order (bnre.results.labels)."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy import stats
import torch

from bnre.evaluation.adaptive import Refinement
from bnre.evaluation.diagnostics import evaluate_exact
from bnre.evaluation.evaluate import evaluate
from bnre.evaluation.infer import WINDOW_QUANTILES, ensemble_log_posterior, plot_window, posterior_view
from bnre.results import figures
from bnre.results.labels import label, ordered_methods
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian
from exact_ratios import ExactRatio


def test_methods_are_ordered_nre_bnre_variants_then_the_exact_posterior():
    assert ordered_methods(["exact", "bnre_sum", "bnre", "nre", "nre_last"]) == ["nre", "bnre", "bnre_sum", "nre_last",
                                                                              "exact"]
    assert label("exact") == "exact posterior" and label("bnre_sum") == "bnre_sum"
    assert figures.colours(["nre", "exact", "bnre_sum"])["exact"] == "black"


@pytest.mark.parametrize("variants", [3, 12, 13, 20])
def test_every_method_and_variant_gets_its_own_colour(variants):
    methods = ["nre", "bnre", "npe", "exact"] + [f"variant_{i:02d}" for i in range(variants)]
    palette = figures.colours(methods)
    assert list(palette) == methods and len(set(palette.values())) == len(methods)
    assert palette["nre"] == figures.PALETTE["nre"] and palette["exact"] == "black"


@pytest.fixture(scope="module")
def tables():
    """The tidy tables of an estimator (the tempered exact ratio, as 'nre') and of the
    exact posterior, at two budgets, as the aggregate rules write them."""
    task = Gaussian()
    theta, x = simulate_range(task, "test", 6, 0, 100)
    estimator = evaluate(task, [ExactRatio(task, 0.7), ExactRatio(task, 1.3)], theta, x, bins=20)
    exact = evaluate_exact(task, theta, x, bins=20)
    out = []
    for kind in ("metrics", "curves", "calibration"):
        parts = [getattr(estimator, kind).assign(method="nre", budget=b) for b in (256, 512)]
        parts += [getattr(exact, kind).assign(method="exact", budget=b) for b in (256, 512)]
        out.append(pd.concat(parts, ignore_index=True).assign(task="gaussian"))
    return out


def drawn(paths):
    (path,) = paths
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 200
    return image


def test_calibration_figure_has_a_panel_row_per_diagnostic_and_parameter(tables, tmp_path):
    _, _, calibration = tables
    tall = drawn(figures.calibration_curves(calibration, "gaussian", tmp_path / "calibration", ("png",)))
    one = calibration[(calibration.diagnostic == "tarp")]
    short = drawn(figures.calibration_curves(one, "gaussian", tmp_path / "tarp", ("png",)))
    # SBC and marginal HPD for each of 2 parameters, and TARP: 5 rows against 1
    assert tall.shape[0] > 3 * short.shape[0]


def test_exact_posterior_is_drawn_as_a_reference_in_the_metric_and_coverage_figures(tables, tmp_path):
    metrics, curves, _ = tables
    for metric in ("log_posterior", "coverage_auc", "kl_exact"):
        drawn(figures.metric_vs_budget(metrics, metric, metric, tmp_path / metric, ("png",), reference="log_prior"))
    with_exact = drawn(figures.coverage_curves(curves, "gaussian", tmp_path / "coverage", ("png",)))
    without = drawn(figures.coverage_curves(curves[curves.method != "exact"], "gaussian", tmp_path / "nre", ("png",)))
    assert with_exact.shape == without.shape and not np.array_equal(with_exact, without)


class Opaque(Gaussian):
    """The Gaussian task with its likelihood hidden: it has no exact posterior."""

    tractable = False


def observed(task, theta, offset):
    """The observation ``theta + sigma * offset``, (1, D) float32."""
    return torch.as_tensor(np.asarray(theta) + task.sigma * np.asarray(offset), dtype=torch.float32)[None]


def test_the_posterior_figure_zooms_to_a_narrow_posterior_beside_the_exact_one(tmp_path):
    task = Gaussian(sigma=0.01)
    theta = np.array([0.3, -0.4])
    x = observed(task, theta, [0.8, -1.1])
    estimators = {"nre": ensemble_log_posterior([ExactRatio(task, 1.5)], x, task),
                  "bnre": ensemble_log_posterior([ExactRatio(task)], x, task)}
    view = posterior_view(task, estimators, x, Refinement())
    assert list(view.densities) == ["nre", "bnre", "exact"]
    width = view.upper - view.lower
    assert (width < 0.1 * (task.upper - task.lower)).all()
    assert ((view.lower < theta) & (theta < view.upper)).all()
    # the widest posterior's (nre: 1.5 sigma) 0.1%-99.9% quantiles, padded by 10% on each side
    q = task.sigma * 1.5 * np.ptp(stats.norm.ppf(WINDOW_QUANTILES))
    np.testing.assert_allclose(width, 1.2 * q, rtol=0.01)
    # normalised densities at the raster's centres: the window holds (almost) all the mass
    pixel = np.prod(width / 100)
    for density in view.densities.values():
        assert density.shape == (100, 100)
        assert density.sum() * pixel == pytest.approx(1, abs=0.01)
    exact = view.densities["exact"]
    np.testing.assert_allclose(view.densities["bnre"], exact, atol=1e-4 * exact.max())

    figure = figures.posterior_example(view.densities, view.lower, view.upper, theta, task.labels, "narrow",
                                       tmp_path / "posterior", ("png",))
    drawn(figure.paths)
    assert [ax.get_title() for ax in figure.figure.axes] == [label("nre"), label("bnre"), label("exact")]
    for ax in figure.figure.axes:
        assert ax.get_xlim() == pytest.approx((view.lower[0], view.upper[0]))
        assert ax.get_ylim() == pytest.approx((view.lower[1], view.upper[1]))


def test_without_a_likelihood_there_is_no_exact_posterior_and_the_window_reaches_the_truth(tmp_path):
    task = Opaque(dim=1, sigma=0.01)
    theta = np.array([0.5])
    x = observed(task, [0.3], [0.0])  # the truth 20 sigma away
    view = posterior_view(task, {"nre": ensemble_log_posterior([ExactRatio(task)], x, task)}, x, Refinement(), theta)
    assert list(view.densities) == ["nre"]
    assert view.lower[0] < 0.3 - 3 * task.sigma and view.upper[0] > 0.5
    figure = figures.posterior_example(view.densities, view.lower, view.upper, theta, task.labels, "far",
                                       tmp_path / "posterior", ("png",))
    (ax,) = figure.figure.axes
    assert ax.get_legend_handles_labels()[1] == [label("nre"), r"$\theta^*$"]


def test_the_corner_plot_spans_the_window_of_every_method_and_shows_the_exact_posterior(tmp_path):
    rng = np.random.default_rng(0)
    samples = {"nre": 0.3 + 0.01 * rng.standard_normal((4000, 2)), "exact": 0.32 + 0.01 * rng.standard_normal((4000, 2))}
    spans = [np.quantile(draws, WINDOW_QUANTILES, axis=0).T for draws in samples.values()]
    lower, upper = plot_window(spans, np.full(2, -1.0), np.full(2, 1.0))
    assert (lower < 0.3 - 0.03).all() and (upper > 0.32 + 0.03).all() and (upper - lower < 0.15).all()
    figure = figures.corner(samples, lower, upper, ("a", "b"), "corner", tmp_path / "corner", ("png",))
    drawn(figure.paths)
    diagonal = figure.figure.axes[0]
    assert diagonal.get_xlim() == pytest.approx((lower[0], upper[0]))
    assert diagonal.get_legend_handles_labels()[1] == [label("nre"), label("exact")]


def test_the_figure_of_three_parameters_shows_the_marginal_of_the_first_two():
    task = Gaussian(dim=3, sigma=0.01)
    x = observed(task, [0.3, -0.4, 0.1], [0.0, 0.0, 0.0])
    view = posterior_view(task, {}, x, Refinement(), points=50)
    # the exact posterior's third parameter integrated out on the window: N(x_{1:2}, sigma^2 I)
    centres = [lo + (np.arange(50) + 0.5) * (hi - lo) / 50 for lo, hi in zip(view.lower[:2], view.upper[:2])]
    grid = np.stack(np.meshgrid(*centres, indexing="ij"), axis=-1)
    expected = stats.norm.pdf(grid, loc=x[0, :2].numpy(), scale=task.sigma).prod(axis=-1)
    np.testing.assert_allclose(view.densities["exact"], expected, atol=0.03 * expected.max())


def test_each_seed_draws_its_own_lines():
    """Two seeds' replicate 0 are two lines, never one line through both seeds' points."""
    rows = pd.DataFrame([dict(seed=s, replicate=r, level=l, coverage=l) for s in (1, 2) for r in ("0", "ensemble")
                         for l in (0.0, 0.5, 1.0)])
    drawn = list(figures.lines(rows, "replicate"))
    assert sorted(key for key, _ in drawn) == ["0", "0", "ensemble", "ensemble"]
    assert all(len(line) == 3 and line.seed.nunique() == 1 for _, line in drawn)
    assert len(list(figures.lines(rows.drop(columns="seed")[rows.seed == 1], "replicate"))) == 2  # tables without seeds
