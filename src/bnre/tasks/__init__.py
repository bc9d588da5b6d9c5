"""Benchmark tasks, selected by name with :func:`get_task`."""

from __future__ import annotations

from typing import Callable

from .base import BoxUniform, Task
from .gaussian import Gaussian
from .gravitational_waves import GravitationalWaves
from .lotka_volterra import LotkaVolterra
from .mg1 import MG1
from .slcp import SLCP
from .spatial_sir import SpatialSIR
from .two_moons import TwoMoons
from .weinberg import Weinberg

TASKS: dict[str, Callable[[], Task]] = {
    "gaussian": Gaussian,
    "slcp": SLCP,
    "weinberg": Weinberg,
    "two_moons": TwoMoons,
    "mg1": MG1,
    "lotka_volterra": LotkaVolterra,
    "spatial_sir": SpatialSIR,
    "gravitational_waves": GravitationalWaves,  # simulation needs the `gw` extra (lalsuite)
}


def get_task(name: str) -> Task:
    """Instantiate the task called ``name``."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


__all__ = [
    "TASKS",
    "BoxUniform",
    "Gaussian",
    "GravitationalWaves",
    "LotkaVolterra",
    "MG1",
    "SLCP",
    "SpatialSIR",
    "Task",
    "TwoMoons",
    "Weinberg",
    "get_task",
]
