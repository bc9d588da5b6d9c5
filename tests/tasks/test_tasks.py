"""The shared task interface, for every registered task."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

from bnre.methods import build_estimator
from bnre.tasks import TASKS, get_task


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


#: the tasks whose likelihood is exact (the others raise NotImplementedError)
TRACTABLE = ("gaussian", "slcp", "two_moons", "weinberg")


def test_tractable_says_whether_log_likelihood_exists(task):
    assert task.tractable == (task.name in TRACTABLE)
    if not task.tractable:
        theta = torch.zeros(1, task.theta_dim)
        with pytest.raises(NotImplementedError, match=f"{task.name}: the likelihood is not tractable"):
            task.log_likelihood(theta, torch.zeros(1, *task.x_shape))


# meta tensors hold no data but fail on any constant left on the CPU, as CUDA would
DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", TRACTABLE)
def test_log_likelihood_broadcasts_like_the_grid_and_keeps_dtype_and_device(name, device):
    task = get_task(name)
    theta = task.prior.sample(7, np.random.default_rng(0))
    x = task.simulate(task.prior.sample(3, np.random.default_rng(1)), np.random.default_rng(2))
    theta64 = torch.as_tensor(theta, device=device)[None]  # (1, G, D), as in the grid pass
    x64 = torch.as_tensor(x, device=device)[:, None]  # (n, 1, *x_shape)
    out = task.log_likelihood(theta64, x64)
    assert out.shape == (3, 7) and out.dtype == torch.float64 and out.device.type == device
    out32 = task.log_likelihood(theta64.float(), x64.float())
    assert out32.shape == (3, 7) and out32.dtype == torch.float32 and out32.device.type == device
    if device == "meta":
        return
    out, out32 = out.cpu(), out32.cpu()
    assert torch.isfinite(out).any()
    # the broadcast rows are the pairs taken one by one
    for i, g in [(0, 0), (2, 6), (1, 3)]:
        single = task.log_likelihood(theta64[0, g].cpu(), x64[i, 0].cpu())
        assert single.shape == ()
        assert single.item() == pytest.approx(out[i, g].item(), rel=1e-12)
    finite = torch.isfinite(out)
    assert torch.equal(finite, torch.isfinite(out32))
    assert torch.allclose(out32[finite].double(), out[finite], rtol=1e-4, atol=1e-3)
