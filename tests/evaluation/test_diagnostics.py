"""The diagnostics shared by estimators and exact posteriors (bnre.evaluation.diagnostics)."""

import numpy as np
import pytest

from bnre.evaluation.diagnostics import evaluate_exact
from bnre.evaluation.evaluate import evaluate
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian, get_task
from exact_ratios import ExactRatio, metrics_of


@pytest.fixture(scope="module")
def test_pairs():
    return simulate_range(Gaussian(), "test", 4, 0, 300)


def test_exact_posterior_from_the_likelihood_equals_the_analytic_posterior(test_pairs):
    """evaluate_exact builds the posterior from prior × Task.log_likelihood; ExactRatio
    from the analytic truncated normal: two routes to the same grid posterior."""

    task = Gaussian()
    theta, x = test_pairs
    analytic = evaluate(task, [ExactRatio(task)], theta, x, bins=40)
    exact = evaluate_exact(task, theta, x, bins=40)
    a, e = analytic.pairs[analytic.pairs.replicate == "ensemble"], exact.pairs
    assert np.allclose(a["rank"], e["rank"], atol=1e-5)
    assert np.allclose(a.log_posterior, e.log_posterior, atol=1e-4)
    assert np.allclose(a.sbc_theta_1, e.sbc_theta_1, atol=1e-5)
    # the estimators' comparison with the exact posterior: nothing to lose for the exact ratio
    m = metrics_of(analytic.metrics, "ensemble")
    assert m["kl_exact"] < 1e-6 and m["tv_exact"] < 1e-3
    assert set(exact.metrics.replicate) == {"ensemble"}


def test_an_intractable_task_has_no_exact_posterior():

    task = get_task("mg1")
    assert not task.tractable
    with pytest.raises(ValueError, match="mg1: the likelihood is not tractable"):
        evaluate_exact(task, np.zeros((2, 3)), np.zeros((2, 5)), bins=4)


def test_exact_posterior_tables_are_those_of_an_estimator():
    task = Gaussian()
    theta, x = simulate_range(task, "test", 5, 0, 50)
    exact = evaluate_exact(task, theta, x, bins=20)
    estimator = evaluate(task, [ExactRatio(task)], theta, x, bins=20)
    for table, other in zip(exact, estimator):
        assert set(table.columns) <= set(other.columns)
        assert set(table.replicate) == {"ensemble"}
    # what only an estimator has: balancing; what only the comparison with the truth has: KL
    assert not {"balancing", "kl_exact"} & set(exact.metrics.metric)
