r"""The model file: a trained ensemble, what it was trained with, and how to rebuild it.

A model file is a ``torch.save`` dictionary (``format`` 1) holding the task's name and
source, the budget, the :class:`~bnre.methods.config.TrainConfig` as a mapping, each
member's seed, state dictionary and kept epoch, and the versions it was made with.
Loading rebuilds each member with its method's :meth:`~bnre.methods.Method.estimator`, so
evaluation needs the methods and the tasks but nothing of training.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from .. import __version__
from ..io import atomic_path
from ..nets.estimators import ConditionalEstimator
from ..provenance import library_versions
from ..tasks import Task, get_task
from . import get_method
from .config import TrainConfig

#: The model files this module writes and reads.
FORMAT = 1


def save_ensemble(
    path: str | os.PathLike,
    task: str,
    task_source: str,
    budget: int,
    config: TrainConfig,
    member_seeds: list[int],
    states: list[dict],
    kept_epochs: list[int],
    provenance: dict | None = None,
) -> None:
    """Write the model file of an ensemble trained on ``budget`` pairs (atomically)."""
    payload = {
        "format": FORMAT,
        "task": task,
        # how to load a plugin task again (bnre.tasks.plugins); a built-in's is its name
        "task_source": task_source,
        "budget": budget,
        "config": dataclasses.asdict(config),
        "member_seeds": member_seeds,
        "members": states,
        "kept_epochs": kept_epochs,
        "version": __version__,
        "libraries": library_versions(),
        "provenance": provenance or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def model_keys(payload: dict) -> dict:
    """The columns that name a model's rows in every table: task, root seed, method (a
    variant's name) and budget."""
    config = payload["config"]
    return dict(task=payload["task"], seed=config["seed"], method=config.get("name") or config["method"],
                budget=payload["budget"])


def load_ensemble(path: str | os.PathLike, task: str | None = None) -> tuple[Task, list[ConditionalEstimator], dict]:
    """Load a model file; return its task, its members (in eval mode) and its metadata.

    ``task`` (a task's source, :func:`bnre.tasks.get_task`) refuses a model of another
    task; without it the task is loaded from the source the model file records.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable model file ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported model file format")
    the_task = get_task(payload.get("task_source", payload["task"]) if task is None else task)
    if payload["task"] != the_task.name:
        raise ValueError(f"{path}: model of task {payload['task']!r}, expected {the_task.name!r}")
    method = get_method(TrainConfig.from_dict(payload["config"]))
    members = []
    for state in payload["members"]:
        estimator = method.estimator(the_task)
        estimator.load_state_dict(state)
        members.append(estimator.eval())
    return the_task, members, payload
