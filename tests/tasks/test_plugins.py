"""Tasks from outside the package: by module path, by file path and by entry point, and
the errors a broken plugin gets (bnre.tasks.plugins)."""

import textwrap

import numpy as np
import pytest

from bnre.simulation.simulate import simulate_range
from bnre.tasks import Task, get_task
from bnre.tasks.plugins import ENTRY_POINTS

PLUGIN = textwrap.dedent(
    """
    import numpy as np
    from bnre.tasks import Task, TruncatedNormal

    class Shifted(Task):
        name = "shifted"
        x_shape = (2,)

        def __init__(self):
            self.prior = TruncatedNormal(0.0, 0.5, [-1.0, -1.0], [1.0, 1.0])

        def simulate(self, theta, rng):
            return theta + 1.0 + 0.1 * rng.standard_normal(theta.shape)
    """
)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_plugin_loads_by_file_path(tmp_path):
    file = write(tmp_path / "sims" / "shifted.py", PLUGIN)
    task = get_task(f"{file}:Shifted")
    assert isinstance(task, Task) and task.name == "shifted"
    assert task.labels == ("theta_1", "theta_2")  # the default labels
    theta, x = simulate_range(task, "train", 1, 0, 300)
    assert theta.shape == (300, 2) and x.shape == (300, 2)
    assert np.abs(x - theta - 1.0).max() < 0.6
    # a name= prefix renames it: files and random streams follow the name
    renamed = get_task(f"other={file}:Shifted")
    assert renamed.name == "other"
    assert not np.array_equal(simulate_range(renamed, "train", 1, 0, 10)[0], theta[:10])


def test_a_plugin_file_imports_its_sibling_modules(tmp_path):
    write(tmp_path / "helpers.py", "OFFSET = 3.0\n")
    file = write(tmp_path / "main.py", PLUGIN.replace("import numpy as np", "import numpy as np\nfrom helpers import OFFSET").replace("1.0 + 0.1", "OFFSET + 0.1"))
    _, x = simulate_range(get_task(f"{file}:Shifted"), "test", 0, 0, 50)
    assert x.mean() > 2.0


def test_a_plugin_loads_by_module_path(tmp_path, monkeypatch):
    write(tmp_path / "my_sims" / "__init__.py", "")
    write(tmp_path / "my_sims" / "shifted.py", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = get_task("my_sims.shifted:Shifted")
    assert task.name == "shifted" and task.theta_dim == 2


def test_a_plugin_loads_by_entry_point(tmp_path, monkeypatch):
    """A distribution registered in a temporary path: its dist-info declares the entry point."""
    write(tmp_path / "ep_sims.py", PLUGIN)
    info = tmp_path / "ep_sims-1.0.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: ep-sims\nVersion: 1.0\n")
    write(info / "entry_points.txt", f"[{ENTRY_POINTS}]\nmine = ep_sims:Shifted\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = get_task("mine")
    assert task.name == "mine"  # an entry point's task takes the entry point's name
    assert task.prior.dim == 2


def test_an_unknown_task_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; built-in tasks: gaussian.*module:Class"):
        get_task("nope")


@pytest.mark.parametrize(
    "source, text, message",
    [
        ("missing.py:Shifted", None, r"task file .*missing\.py does not exist"),
        ("broken.py:Shifted", "import numpy as np\nraise RuntimeError('boom')\n", r"broken\.py does not import \(RuntimeError\('boom'\)\)"),
        ("syntax.py:Shifted", "def (:\n", r"syntax\.py does not import \(SyntaxError"),
        ("plain.py:Plain", "class Plain:\n    pass\n", r"is not a task \(a subclass of bnre\.tasks\.Task\)"),
        ("shifted.py:Nothing", PLUGIN, r"has no 'Nothing'"),
        ("shifted.py", PLUGIN, None),  # no class: an unknown task
    ],
)
def test_a_broken_plugin_gets_a_clear_error(tmp_path, source, text, message):
    if text is not None:
        write(tmp_path / source.split(":")[0], text)
    if message is None:
        with pytest.raises(ValueError, match="unknown task"):
            get_task(str(tmp_path / source))
        return
    with pytest.raises(ValueError, match=message):
        get_task(str(tmp_path / source))


PRIOR_WITHOUT_BOX = """
import numpy as np
from bnre.tasks import Task

class Unbounded:
    lower = np.array([0.0, -np.inf])
    upper = np.array([1.0, 1.0])
    def sample(self, n, rng):
        return rng.standard_normal((n, 2))
    def log_prob(self, theta):
        return -0.5 * (theta**2).sum(-1)

class Open(Task):
    name = "open"
    x_shape = (2,)
    prior = Unbounded()
    def simulate(self, theta, rng):
        return theta
"""


def test_a_prior_without_a_finite_box_is_refused(tmp_path):
    file = write(tmp_path / "open.py", PRIOR_WITHOUT_BOX)
    with pytest.raises(ValueError, match=r"open\.py\): the prior needs a finite box bounding its support"):
        get_task(f"{file}:Open")


@pytest.mark.parametrize(
    "body, message",
    [
        ("return theta[:, :1] + 0.0", r"simulate returned a ndarray of shape \(256, 1\).*expected a real-valued numpy array of shape \(256, 2\)"),
        ("return (theta > 0).astype(object)", r"dtype object"),
        ("return list(theta)", r"simulate returned a list"),
        ("return np.where(theta[:, :1] > 0.9, np.nan, theta)", r"produced \d+ non-finite observations .* e\.g\. at theta=\[0\.9"),
        (
            "if (theta[:, 0] > 0.95).any(): raise ArithmeticError('too large')\n        return theta",
            r"failed on chunk 0 of split 'train' \(ArithmeticError\('too large'\)\); it fails alone at theta=\[0\.9",
        ),
    ],
)
def test_a_broken_simulator_names_the_task_file_and_theta(tmp_path, body, message):
    file = write(tmp_path / "bad_sim.py", PLUGIN.replace("return theta + 1.0 + 0.1 * rng.standard_normal(theta.shape)", body))
    task = get_task(f"{file}:Shifted")
    with pytest.raises((ValueError, RuntimeError, FloatingPointError), match=message) as error:
        simulate_range(task, "train", 1, 0, 256)
    assert str(file) in str(error.value)


def test_a_plugin_without_a_name_must_be_named(tmp_path):
    file = write(tmp_path / "anon.py", PLUGIN.replace('name = "shifted"', ""))
    with pytest.raises(ValueError, match=r"set `name` on the class .* or give the task as name="):
        get_task(f"{file}:Shifted")
    assert get_task(f"anon={file}:Shifted").name == "anon"
