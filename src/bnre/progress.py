"""A one-line progress bar for interactive training; silent when stderr is not a terminal.

Logs get one plain line per epoch from the trainer; the bar only adds a self-overwriting
line ``epoch e/E step s/S loss l ETA ≤ t`` on a terminal. The ETA assumes every epoch
runs (early stopping can only make it shorter).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class Progress:
    """Throttled status line: at most one redraw per ``interval`` seconds."""

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        stream: TextIO | None = None,
        interval: float = 0.5,
        enabled: bool | None = None,
    ):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.epochs, self.steps_per_epoch, self.interval = epochs, steps_per_epoch, interval
        self.started = time.perf_counter()
        self.first_step: int | None = None
        self.last_draw = -float("inf")

    def update(self, epoch: int, step: int, loss: Callable[[], float]) -> None:
        """Redraw for ``step`` of ``epoch`` (1-based); ``loss`` is called only on a redraw."""
        if not self.enabled:
            return
        done = (epoch - 1) * self.steps_per_epoch + step
        if self.first_step is None:
            self.first_step, self.started = done, time.perf_counter()
        now = time.perf_counter()
        if now - self.last_draw < self.interval:
            return
        self.last_draw = now
        rate = (done - self.first_step) / max(now - self.started, 1e-9)
        remaining = (self.epochs * self.steps_per_epoch - done) / rate if rate > 0 else float("nan")
        self.stream.write(
            f"\repoch {epoch}/{self.epochs} step {step}/{self.steps_per_epoch} "
            f"loss {loss():.4f} ETA ≤ {format_seconds(remaining)} "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.first_step is not None:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` (or ``?`` when unknown)."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
