import io
import os
import pty
import select

from bnre.training.progress import Progress


def read_all(leader: int) -> bytes:
    """Everything written to a pseudo-terminal whose other end is closed.

    The line discipline hands output over asynchronously, so one ``read`` may return
    part of it; read until the kernel reports the closed end (EIO) or nothing arrives.
    """
    chunks = []
    try:
        while select.select([leader], [], [], 5)[0]:
            chunk = os.read(leader, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:  # EIO: all written data read, the follower is closed
        pass
    finally:
        os.close(leader)
    return b"".join(chunks)


def test_bar_on_a_terminal_shows_epoch_loss_and_eta():
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        progress = Progress(epochs=10, steps_per_epoch=4, stream=terminal, interval=0)
        assert progress.enabled  # a real pseudo-terminal
        for epoch in (1, 2):
            for step in range(1, 5):
                progress.update(epoch, step, lambda: 0.6931)
        progress.close()
    shown = read_all(leader).decode()
    assert "8/40" in shown and "epoch 2/10 loss 0.6931" in shown
    assert "<" in shown  # tqdm's elapsed<remaining time


def test_bar_is_silent_in_logs_and_throttled():
    log = io.StringIO()
    progress = Progress(epochs=3, steps_per_epoch=2, stream=log)
    progress.update(1, 1, lambda: 1 / 0)  # not a terminal: the loss is never computed
    progress.close()
    assert log.getvalue() == ""
    calls = []
    throttled = Progress(epochs=3, steps_per_epoch=1000, stream=io.StringIO(), interval=3600, enabled=True)
    for step in range(1, 1001):
        throttled.update(1, step, lambda: calls.append(step) or 0.5)
    assert calls == [1]
