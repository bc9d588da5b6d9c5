"""A progress bar for interactive training (tqdm's); silent when stderr is not a terminal.

Logs get one plain line per epoch from the trainer; on a terminal the bar adds tqdm's
self-overwriting line over every step of the run, with the epoch and the running loss.
Its ETA assumes every epoch runs (early stopping can only make it shorter).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm


class Progress:
    """tqdm's bar over ``epochs`` × ``steps_per_epoch`` steps. The loss, whose reading may
    wait for the device, is read at most once per ``interval`` seconds."""

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        stream: TextIO | None = None,
        interval: float = 0.5,
        enabled: bool | None = None,
    ):
        stream = sys.stderr if stream is None else stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.epochs, self.steps_per_epoch, self.interval = epochs, steps_per_epoch, interval
        self.bar = tqdm(
            total=epochs * steps_per_epoch, file=stream, disable=not self.enabled, mininterval=interval,
            unit="step",
        )
        self.last_loss = -float("inf")

    def update(self, epoch: int, step: int, loss: Callable[[], float]) -> None:
        """Move to ``step`` of ``epoch`` (1-based); ``loss`` is called at most once per interval."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_loss >= self.interval:
            self.last_loss = now
            self.bar.set_postfix_str(f"epoch {epoch}/{self.epochs} loss {loss():.4f}", refresh=False)
        self.bar.update((epoch - 1) * self.steps_per_epoch + step - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
