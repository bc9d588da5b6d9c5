"""Figures of the tidy tables (bnre.figures) and the methods' names and order (bnre.labels)."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from bnre import figures
from bnre.diagnostics import evaluate_exact
from bnre.evaluate import evaluate
from bnre.labels import label, ordered_methods
from bnre.simulate import simulate_range
from bnre.tasks import Gaussian
from test_evaluate import ExactRatio


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
