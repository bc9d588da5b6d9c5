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
import os
from typing import Callable

import torch

from ..io import atomic_path
from ..methods import get_method
from ..methods.config import TrainConfig
from ..methods.model_file import save_ensemble
from ..sampling import member_seed, member_subset
from ..tasks import get_task
from .checkpoint import Checkpointer, config_fingerprint
from .fit import fit_ensemble
from .stream import PairsSource

#: Columns of the history CSV, before the per-epoch values of ``fit_ensemble``.
HISTORY_KEYS = ("task", "seed", "method", "budget")

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
    (then :class:`bnre.training.checkpoint.Interrupted` is raised), a later call resumes from it,
    and it is removed once the model file is written.
    """
    task = get_task(task_source)
    method = get_method(config, task)
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
    keys = dict(task=task_name, seed=config.seed, method=config.name, budget=budget)
    rows = [{**keys, **row} for row in sorted(history, key=lambda r: (r["member"], r["epoch"]))]
    with atomic_path(history_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    kept_epochs = [max(r["epoch"] for r in history if r["member"] == k and r["kept"]) for k in range(len(states))]
    save_ensemble(model_path, task_name, task_source, budget, config, seeds, states, kept_epochs, provenance)
    Checkpointer(checkpoint_path, fingerprint, 0).remove()
