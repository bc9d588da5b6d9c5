"""The shared task interface, for every registered task."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

from bnre.tasks import TASKS, get_task
from bnre.methods import build_estimator


LAL = importlib.util.find_spec("lalsimulation") is not None


@pytest.fixture(params=sorted(TASKS))
def task(request):
    if request.param == "gravitational_waves" and not LAL:
        pytest.skip("lalsuite not installed (the gw extra)")
    return get_task(request.param)


def test_gravitational_waves_without_lalsuite_trains_but_cannot_simulate():
    """Without the gw extra the task is still known (training, evaluation and figures need no
    lal); simulating it fails with the installation command."""
    code = (
        "import sys, numpy as np\n"
        "sys.modules['lal'] = sys.modules['lalsimulation'] = None\n"
        "from bnre.tasks import get_task\n"
        "from bnre.methods import build_estimator\n"
        "task = get_task('gravitational_waves')\n"
        "build_estimator(task, [8], 'SELU')\n"
        "print(task.x_shape)\n"
        "try:\n"
        "    task.simulate(task.prior.sample(2, np.random.default_rng(0)), np.random.default_rng(0))\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(2, 8192)" in result.stdout
    assert 'pip install "bnre-workflow[gw]"' in result.stdout


def test_prior_samples_lie_in_the_box(task):
    theta = task.prior.sample(1000, np.random.default_rng(0))
    assert theta.shape == (1000, task.theta_dim)
    assert np.all((theta >= task.lower) & (theta <= task.upper))
    assert np.all(task.prior.log_prob(theta) == -task.prior.log_volume)


def test_prior_log_prob_outside_box(task):
    outside = task.upper + 1.0
    assert task.prior.log_prob(outside[None])[0] == -np.inf
    assert task.prior.log_prob(torch.as_tensor(outside[None]))[0] == -np.inf


def test_simulator_shapes_and_determinism(task):
    theta = task.prior.sample(64, np.random.default_rng(0))
    x1 = task.simulate(theta, np.random.default_rng(1))
    x2 = task.simulate(theta, np.random.default_rng(1))
    x3 = task.simulate(theta, np.random.default_rng(2))
    assert x1.shape == (64, *task.x_shape)
    assert np.array_equal(x1, x2)
    assert not np.array_equal(x1, x3)
    assert np.isfinite(x1).all()


def test_default_network_gives_one_log_ratio_per_pair(task):
    estimator = build_estimator(task, [8, 8], "SELU")
    theta = torch.as_tensor(task.prior.sample(5, np.random.default_rng(0)), dtype=torch.float32)
    x = torch.as_tensor(task.simulate(theta.numpy(), np.random.default_rng(0)), dtype=torch.float32)
    assert estimator(theta, x).shape == (5,)


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task("nope")
