"""End to end: NRE and BNRE trained briefly on the Gaussian task through the real workflow,
judged against the exact posterior.

What the assertions would catch: a preprocessing or standardisation step applied in
training but not in evaluation (or the reverse), evaluation on another split than the
test file, a wrong normalisation of the grid posterior, a broken ensemble, a table that is
not what the model file gives.

Tolerances come from the run-to-run spread measured with this config at seeds 11–15
(`seed` below is 11), each a fresh simulation, training and evaluation:

* NRE ensemble's gap to the exact expected log posterior: 0.011, 0.015, 0.016, 0.012,
  0.013 nats (mean 0.013, sd 0.002); the test allows 0.05.
* NRE ensemble's coverage AUC: −0.018, −0.022, −0.026, −0.022, −0.026 (mean −0.023, sd
  0.004). A calibrated posterior's AUC on N = 2000 pairs has standard deviation
  σ = 1/√(12 N) = 0.0065 (its ranks are uniform); NRE trained this briefly is
  overconfident by about 0.02 here (the paper's point), so the band is 4σ around 0
  widened on the overconfident side by 0.03: (−0.056, +0.026), 8 measured standard
  deviations from the measured mean on either side.
* BNRE ensemble's gap to the exact value: 0.057, 0.062, 0.095, 0.066, 0.078; the test
  allows 0.2.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from bnre.evaluation.adaptive import Refinement
from bnre.evaluation.evaluate import evaluate, with_kept_epochs
from bnre.methods.model_file import load_ensemble
from bnre.simulation.pairs import read_pairs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "config" / "accuracy.yaml"

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("accuracy")
    command = [sys.executable, "-m", "snakemake", "results/summary.csv", "-s", str(ROOT / "Snakefile"),
               "--cores", "2", "--directory", str(workdir), "--configfile", str(CONFIG)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = pd.read_csv(workdir / "results" / "summary.csv", dtype={"replicate": str})
    return workdir, summary


def metric(summary, method, name, replicate="ensemble"):
    rows = summary[(summary.method == method) & (summary.metric == name) & (summary.replicate == replicate)]
    assert len(rows) == 1
    return float(rows.value.iloc[0])


def exact_log_posterior(workdir):
    from bnre.tasks import Gaussian

    config = yaml.safe_load(CONFIG.read_text())
    test = read_pairs(workdir / "data" / "gaussian" / "seed11" / "test.h5", task="gaussian", theta_dim=2, x_shape=(2,))
    theta = torch.as_tensor(test.theta[: config["evaluate"]["pairs"]]).double()
    x = torch.as_tensor(test.x[: config["evaluate"]["pairs"]]).double()
    return float(Gaussian().log_posterior(theta, x).mean())


def test_expected_log_posterior_is_near_the_exact_one(run):
    workdir, summary = run
    exact = exact_log_posterior(workdir)
    assert exact - metric(summary, "nre", "log_posterior") == pytest.approx(0, abs=0.05)
    assert abs(exact - metric(summary, "bnre", "log_posterior")) < 0.2
    # no estimator beats the exact posterior by more than Monte Carlo error (2000 pairs)
    for method in ("nre", "bnre"):
        assert metric(summary, method, "log_posterior") < exact + 0.02


def test_nre_coverage_auc_is_within_its_band_of_zero(run):
    _, summary = run
    n = metric(summary, "nre", "test_pairs")
    sigma = 1 / math.sqrt(12 * n)
    assert -4 * sigma - 0.03 < metric(summary, "nre", "coverage_auc") < 4 * sigma


def test_summary_equals_a_direct_evaluation_of_the_model_files(run):
    workdir, summary = run
    config = yaml.safe_load(CONFIG.read_text())
    pairs = config["evaluate"]["pairs"]
    test = read_pairs(workdir / "data" / "gaussian" / "seed11" / "test.h5", task="gaussian", theta_dim=2, x_shape=(2,))
    assert test.attrs["split"] == "test"
    for method in config["methods"]:
        budget = config["budgets"][0]
        task, members, meta = load_ensemble(workdir / "models" / "gaussian" / "seed11" / method / f"{budget}.pt")
        spec = Refinement(coarse_bins=config["evaluate"]["coarse_bins"], cells=config["evaluate"]["refine_cells"])
        metrics, _, _, _ = evaluate(task, members, test.theta[:pairs], test.x[:pairs], bins=60, grid_spec=spec)
        metrics = with_kept_epochs(metrics, meta["kept_epochs"])
        mine = summary[(summary.method == method) & (summary.budget == budget)]
        merged = mine.merge(metrics, on=["replicate", "metric"], suffixes=("_table", "_direct"))
        assert len(merged) == len(mine) == len(metrics)
        np.testing.assert_allclose(merged.value_table, merged.value_direct, rtol=1e-12, atol=1e-12)
