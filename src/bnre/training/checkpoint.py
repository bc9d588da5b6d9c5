"""Training checkpoints: periodic atomic saves, a save on SIGTERM, and resumption.

A checkpoint belongs to one training run, identified by :func:`config_fingerprint` of
what defines its result (options, data sizes, budget); a checkpoint of another run is
ignored, never resumed from.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Callable

import torch

from ..io import atomic_path

#: Version of the checkpoint's layout; a checkpoint of another layout is ignored.
FORMAT = 2


class Interrupted(Exception):
    """Raised after a checkpoint was written in response to SIGTERM."""


def config_fingerprint(payload: dict) -> str:
    """A short hash identifying a training run (config, data, budget)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Checkpointer:
    """Saves training state to ``path`` every ``seconds`` and when SIGTERM arrives.

    Used as a context manager, it catches SIGTERM (only with a ``path``) and sets
    :attr:`terminated`; the training loop then calls :meth:`interrupt` at a consistent
    point. Without a ``path`` nothing is ever saved.
    """

    def __init__(
        self, path: str | os.PathLike | None, fingerprint: str, seconds: float, log: Callable[[str], None] = print
    ):
        self.path = None if path is None else Path(path)
        self.fingerprint, self.seconds, self.log = fingerprint, seconds, log
        self.terminated = False
        self.last_save = time.perf_counter()
        self._previous = None

    def load(self) -> dict | None:
        """The saved state of this run, or None (no checkpoint, or another run's)."""
        if self.path is None or not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("format") != FORMAT or state.get("fingerprint") != self.fingerprint:
            self.log(f"ignoring checkpoint {self.path}: it belongs to another configuration or version")
            return None
        return state

    def save(self, state: dict) -> None:
        if self.path is None:
            return
        with atomic_path(self.path) as tmp:
            torch.save({**state, "format": FORMAT, "fingerprint": self.fingerprint}, tmp)
        self.last_save = time.perf_counter()

    def save_if_due(self, state: Callable[[], dict]) -> None:
        """Save ``state()`` if ``seconds`` have passed since the last save."""
        if self.path is not None and time.perf_counter() - self.last_save >= self.seconds:
            self.save(state())

    def interrupt(self, state: Callable[[], dict], where: str) -> None:
        """After SIGTERM: save ``state()`` and raise :class:`Interrupted`."""
        if self.terminated:
            self.save(state())
            raise Interrupted(f"SIGTERM: checkpoint written at {where}")

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _on_sigterm(self, signum, frame) -> None:  # noqa: ARG002
        self.terminated = True

    def __enter__(self) -> "Checkpointer":
        if self.path is not None:
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        self.last_save = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
