"""Benchmark tasks, selected by name with :func:`get_task`."""

from __future__ import annotations

from typing import Callable

from .base import BoxUniform, Task
from .gaussian import Gaussian
from .slcp import SLCP

TASKS: dict[str, Callable[[], Task]] = {
    "gaussian": Gaussian,
    "slcp": SLCP,
}


def get_task(name: str) -> Task:
    """Instantiate the task called ``name``."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


__all__ = ["TASKS", "BoxUniform", "Gaussian", "SLCP", "Task", "get_task"]
