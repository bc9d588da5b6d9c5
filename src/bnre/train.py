r"""Training of one ensemble from the command line's inputs, and model files.

Member :math:`k` of an ensemble for budget :math:`B` draws its own seed
(:func:`bnre.sampling.member_seed`); the seed fixes its initialisation, its training set
(the first :math:`B` pairs of a member-specific permutation of the training pool) and its
shuffling. The seed does not depend on the method, so NRE and BNRE member :math:`k` share
initialisation and data (common random numbers make the comparison paired).

Optimisation follows the paper: AdamW, ReduceLROnPlateau on the validation loss, early
stopping with patience, and the best-validation weights are kept. The validation loss is
the objective evaluated on the whole validation set at once.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Callable

import torch

from . import __version__
from .checkpoint import Checkpointer, config_fingerprint
from .config import TrainConfig
from .io import atomic_path
from .methods import get_method
from .nn import ConditionalEstimator
from .provenance import library_versions
from .sampling import member_seed, member_subset
from .stream import PairsSource
from .tasks import Task, get_task
from .trainer import fit_ensemble

#: Columns of the history CSV, before the per-epoch values of ``fit_ensemble``.
HISTORY_KEYS = ("task", "method", "budget")

Log = Callable[[str], None]


def train_ensemble(
    task_source: str,
    config: TrainConfig,
    train: PairsSource,
    val: PairsSource,
    budget: int,
    model_path: str | os.PathLike,
    history_path: str | os.PathLike,
    log: Log = print,
    checkpoint_path: str | os.PathLike | None = None,
    provenance: dict | None = None,
) -> None:
    """Train ``config.replicates`` members together; write the model file and history CSV.

    With ``checkpoint_path``, training state is saved there periodically and on SIGTERM
    (then :class:`bnre.checkpoint.Interrupted` is raised), a later call resumes from it,
    and it is removed once the model file is written.
    """
    task, method = get_task(task_source), get_method(config)
    task_name = task.name
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    seeds = [member_seed(config.seed, task_name, budget, k) for k in range(config.replicates)]
    subsets = [member_subset(seed, len(train), budget, config.shuffle_block) for seed in seeds]
    estimators = []
    for seed in seeds:
        torch.manual_seed(seed)
        estimators.append(method.estimator(task))
    # options that do not change the result may change between a checkpoint and its resumption
    fingerprint = config_fingerprint(
        {"task": task_name, "budget": budget, "config": config.result_options(), "n_train": len(train), "n_val": len(val)}
    )
    states, history = fit_ensemble(
        task, estimators, seeds, subsets, train, val, config, checkpoint_path, fingerprint, log
    )
    keys = dict(task=task_name, method=config.name, budget=budget)
    rows = [{**keys, **row} for row in sorted(history, key=lambda r: (r["member"], r["epoch"]))]
    with atomic_path(history_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    payload = {
        "format": 1,
        "task": task_name,
        # how to load a plugin task again (bnre.tasks.plugins); a built-in's is its name
        "task_source": task_source,
        "budget": budget,
        "config": dataclasses.asdict(config),
        "member_seeds": seeds,
        "members": states,
        "kept_epochs": [max(r["epoch"] for r in history if r["member"] == k and r["kept"]) for k in range(len(states))],
        "version": __version__,
        "libraries": library_versions(),
        "provenance": provenance or {},
    }
    with atomic_path(model_path) as tmp:
        torch.save(payload, tmp)
    Checkpointer(checkpoint_path, fingerprint, 0).remove()


def load_ensemble(path: str | os.PathLike, task: str | None = None) -> tuple[Task, list[ConditionalEstimator], dict]:
    """Load a model file; return its task, its members (in eval mode) and its metadata.

    ``task`` (a task's source, :func:`bnre.tasks.get_task`) refuses a model of another
    task; without it the task is loaded from the source the model file records.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable model file ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != 1:
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
