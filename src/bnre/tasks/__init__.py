"""The tasks: a simulator, its prior box and, where tractable, its exact posterior, each
one module and a line in :data:`bnre.registry.tasks.TASKS`; user plugins are loaded from
a file (:mod:`.plugins`). Select one by name or source with :func:`get_task`.

Imports: bnre (shared modules only), bnre.registry, bnre.nets.
"""

from __future__ import annotations

from typing import Callable

from ..registry import resolve, tasks as registry
from .base import Task
from .gaussian import Gaussian
from .gravitational_waves import GravitationalWaves
from .lotka_volterra import LotkaVolterra
from .mg1 import MG1
from .plugins import ENTRY_POINTS, entry_points, load_plugin
from .priors import BoxUniform, Independent, LogUniform, Prior, TruncatedLogNormal, TruncatedNormal
from .slcp import SLCP
from .spatial_sir import SpatialSIR
from .two_moons import TwoMoons
from .weinberg import Weinberg

#: The built-in tasks by name, as :data:`bnre.registry.tasks.TASKS` names them.
TASKS: dict[str, Callable[[], Task]] = {name: resolve(entry.target) for name, entry in registry.TASKS.items()}


def get_task(source: str) -> Task:
    """Instantiate a task: a built-in name, or a plugin's source (:mod:`bnre.tasks.plugins`)."""
    if source in TASKS:
        return TASKS[source]()
    task = load_plugin(source)
    if task is None:
        installed = sorted(entry_points())
        raise ValueError(
            f"unknown task {source!r}; built-in tasks: {', '.join(sorted(TASKS))}"
            + (f"; installed ({ENTRY_POINTS}): {', '.join(installed)}" if installed else "")
            + "; or a plugin, module:Class or path/to/file.py:Class"
        )
    return task


__all__ = [
    "TASKS",
    "BoxUniform",
    "Gaussian",
    "GravitationalWaves",
    "Independent",
    "LogUniform",
    "LotkaVolterra",
    "MG1",
    "Prior",
    "SLCP",
    "SpatialSIR",
    "Task",
    "TruncatedLogNormal",
    "TruncatedNormal",
    "TwoMoons",
    "Weinberg",
    "get_task",
]
