"""A tiny version of the study (issue 8): what must hold whatever the budget.

* The exact posterior of the Gaussian task is calibrated: its coverage is nominal.
* BNRE's balancing value E_joint[d] + E_marginal[d] is closer to 1 than NRE's for the same
  members (same seeds, data and initialisation), on fresh test pairs.
"""

import numpy as np
import torch

from bnre.evaluation.coverage import PAPER_LEVELS, clopper_pearson
from bnre.evaluation.evaluate import evaluate
from bnre.methods import build_estimator
from bnre.methods.config import TrainConfig
from bnre.methods.losses import balancing
from bnre.sampling import member_seed, member_subset
from bnre.simulation.pairs import Pairs
from bnre.simulation.simulate import simulate_range
from bnre.tasks import Gaussian, get_task
from bnre.training.fit import fit_ensemble
from exact_ratios import ExactRatio  # the exact log-ratio of the Gaussian task


def test_exact_gaussian_posterior_has_nominal_coverage():
    task = Gaussian()
    theta, x = simulate_range(task, "test", 8, 0, 2000)
    _, curves, _, _ = evaluate(task, [ExactRatio(task)], theta, x, bins=60)
    curve = curves[(curves.replicate == "0") & curves.level.isin(PAPER_LEVELS)]
    lower, upper = clopper_pearson(np.round(curve.coverage.values * 2000), 2000, confidence=0.99)
    assert np.all((lower <= curve.level.values) & (curve.level.values <= upper))


def trained_balancing(method: str) -> list[float]:
    task = get_task("slcp")
    train = Pairs(*simulate_range(task, "train", 1, 0, 2048), {})
    val = Pairs(*simulate_range(task, "val", 1, 0, 1024), {})
    theta, x = map(torch.as_tensor, simulate_range(task, "test", 1, 0, 4096))
    config = TrainConfig(method=method, replicates=3, epochs=30, patience=30, hidden=[64, 64], device="cpu")
    seeds = [member_seed(0, "slcp", 1024, k) for k in range(3)]
    subsets = [member_subset(s, len(train), 1024) for s in seeds]
    estimators = []
    for seed in seeds:
        torch.manual_seed(seed)
        estimators.append(build_estimator(task, config.hidden, config.activation))
    states, _ = fit_ensemble(task, estimators, seeds, subsets, train, val, config, log=lambda _: None)
    values = []
    for state, estimator in zip(states, estimators):
        estimator.load_state_dict(state)
        with torch.no_grad():
            values.append(float(balancing(estimator(theta, x), estimator(torch.roll(theta, 1, 0), x))))
    return values


def test_bnre_is_closer_to_balanced_than_nre():
    nre, bnre = trained_balancing("nre"), trained_balancing("bnre")
    # member by member (paired: same seed, data and initialisation)
    for a, b in zip(nre, bnre):
        assert abs(b - 1) < abs(a - 1), (nre, bnre)
    assert max(abs(b - 1) for b in bnre) < 0.01
    assert np.mean([abs(a - 1) for a in nre]) > 2 * np.mean([abs(b - 1) for b in bnre])
