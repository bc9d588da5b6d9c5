"""Tasks from outside the package: the user's own simulator.

A task is named by one string, its *source*:

* a built-in name (``slcp``);
* ``package.module:Class``, an importable module and a class in it;
* ``path/to/file.py:Class``, a Python file (relative paths from the working directory);
* a name that an installed distribution registers in the entry-point group
  :data:`ENTRY_POINTS` (``[project.entry-points."bnre.tasks"] mine = "pkg.mod:Class"``);

optionally prefixed by ``name=``, which names the task (the files and seeds follow the
name; without it a plugin class must set its own ``name``). The class is instantiated
without arguments and must be a :class:`bnre.tasks.Task`: a prior with a finite box
(:mod:`bnre.tasks.priors`), ``x_shape`` and a vectorised ``simulate(theta, rng)``;
``labels``, ``embedding``, ``preprocess`` and ``log_likelihood`` are optional.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from .base import Task

#: Entry-point group through which installed distributions register tasks.
ENTRY_POINTS = "bnre.tasks"

#: What a task name may be: it names files, wildcards and random streams.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def split_source(source: str) -> tuple[str | None, str]:
    """``"name=target"`` -> ``(name, target)``; a bare target -> ``(None, target)``."""
    name, sep, target = source.partition("=")
    if not sep:
        return None, source
    if not NAME.match(name):
        raise ValueError(f"task {source!r}: {name!r} is not a task name (letters, digits and _)")
    return name, target


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The tasks installed distributions register, by name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)}


def load_class(target: str) -> type:
    """The class of ``module:Class`` or ``file.py:Class``, imported."""
    where, sep, attribute = target.rpartition(":")
    if not sep or not where or not attribute:
        raise ValueError(f"task {target!r}: expected module:Class or path/to/file.py:Class")
    if where.endswith(".py"):
        module = _import_file(Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except Exception as error:
            raise ValueError(f"task {target!r}: module {where!r} does not import ({error!r})") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"task {target!r}: {where} has no {attribute!r}") from None


def _import_file(path: Path):
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"task file {path} does not exist")
    name = f"bnre_task_plugin_{abs(hash(str(path)))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # the file's own directory first, so that it can import its sibling modules
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ValueError(f"task file {path} does not import ({error!r})") from error
    finally:
        sys.path.remove(str(path.parent))
    return module


def instantiate(factory: Callable[[], Task], source: str) -> Task:
    """Instantiate a task class and check that it is one."""
    if not (isinstance(factory, type) and issubclass(factory, Task)):
        raise ValueError(f"task {source!r}: {factory!r} is not a task (a subclass of bnre.tasks.Task)")
    try:
        task = factory()
    except Exception as error:
        raise ValueError(f"task {source!r}: {factory.__name__}() failed ({error!r})") from error
    return task


def check_task(task: Task, source: str) -> Task:
    """Check a plugin task's interface (prior box, shapes, labels); fill in default labels."""
    where = f"task {source!r} ({origin(task)})"
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"{where}: set `name` on the class (letters, digits and _), or give the task as name={source}")
    prior = getattr(task, "prior", None)
    for attribute in ("lower", "upper", "sample", "log_prob"):
        if not hasattr(prior, attribute):
            raise ValueError(f"{where}: its prior has no {attribute!r} (see bnre.tasks.priors)")
    lower, upper = np.asarray(prior.lower, dtype=float), np.asarray(prior.upper, dtype=float)
    if lower.ndim != 1 or lower.shape != upper.shape or not lower.size:
        raise ValueError(f"{where}: the prior's box must be two 1-D arrays of equal length")
    if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
        raise ValueError(f"{where}: the prior needs a finite box bounding its support, got [{lower}, {upper}]")
    if not (upper > lower).all():
        raise ValueError(f"{where}: the prior's box is empty, lower={lower}, upper={upper}")
    shape = getattr(task, "x_shape", None)
    if not (isinstance(shape, tuple) and shape and all(isinstance(n, int) and n > 0 for n in shape)):
        raise ValueError(f"{where}: x_shape must be a tuple of positive ints, got {shape!r}")
    labels = getattr(task, "labels", None)
    if labels is None:
        task.labels = tuple(f"theta_{i + 1}" for i in range(lower.size))
    elif len(labels) != lower.size or len(set(labels)) != len(labels):
        raise ValueError(f"{where}: labels {labels!r} must be {lower.size} distinct names")
    return task


def origin(task: Task) -> str:
    """The file (or module) that defines the task's class, for error messages."""
    try:
        return inspect.getsourcefile(type(task)) or type(task).__module__
    except TypeError:
        return type(task).__module__


def load_plugin(source: str) -> Task | None:
    """The task of a ``[name=]module:Class``, ``[name=]file.py:Class`` or entry-point
    source; ``None`` if ``source`` is none of these. An entry point's task takes the
    entry point's name."""
    name, target = split_source(source)
    if ":" in target:
        factory = load_class(target)
    else:
        point = entry_points().get(target)
        if point is None:
            return None
        try:
            factory = point.load()
        except Exception as error:
            raise ValueError(f"task {target!r}: its entry point {point.value!r} does not load ({error!r})") from error
        name = name or target
    task = instantiate(factory, source)
    if name is not None:
        task.name = name
    return check_task(task, source)
