r"""Seeded, block-wise simulation of :math:`(\theta, x) \sim p(\theta) p(x \mid \theta)`.

Randomness is organised in *chunks* of :data:`CHUNK` consecutive pairs. Chunk ``c`` of
split ``s`` of task ``t`` draws from its own stream,
``SeedSequence(seed, spawn_key=(crc32(t), s, c))``, so that

* splits, tasks and chunks are statistically independent streams;
* the pairs ``[start, stop)`` do not depend on how the split is cut into blocks: a merged
  set of blocks equals a one-block simulation of the same seed, whatever the block size.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..tasks import Task
from ..tasks.plugins import origin

#: Pairs per random stream; the unit of reproducibility.
CHUNK = 256

#: Stream index of each split.
SPLITS = {"train": 0, "val": 1, "test": 2}


def chunk_rng(task: str, split: str, seed: int, chunk: int) -> np.random.Generator:
    """The independent random stream of one chunk."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    key = (zlib.crc32(task.encode()), SPLITS[split], chunk)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def simulate_range(
    task: Task, split: str, seed: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Simulate pairs ``start`` to ``stop`` (exclusive) of a split.

    Returns ``theta`` (N×D) and ``x`` (N×…), float32. Each touched chunk is simulated
    whole (vectorised) and sliced, so any ``[start, stop)`` is consistent with any other.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"invalid range [{start}, {stop})")
    thetas, xs = [], []
    for chunk in range(start // CHUNK, -(-stop // CHUNK)):
        rng = chunk_rng(task.name, split, seed, chunk)
        theta = task.prior.sample(CHUNK, rng)
        try:
            x = task.simulate(theta, rng)
        except Exception as error:
            culprit = find_failing(task, theta)
            raise RuntimeError(
                f"task {task.name!r} ({origin(task)}) failed on chunk {chunk} of split {split!r} ({error!r})"
                + (f"; it fails alone at theta={culprit.tolist()}" if culprit is not None else "")
            ) from error
        check_output(task, theta, x)
        lo = max(start - chunk * CHUNK, 0)
        hi = min(stop - chunk * CHUNK, CHUNK)
        thetas.append(theta[lo:hi])
        xs.append(x[lo:hi])
    if not thetas:
        return (
            np.zeros((0, task.theta_dim), np.float32),
            np.zeros((0, *task.x_shape), np.float32),
        )
    theta = np.concatenate(thetas).astype(np.float32)
    x = np.concatenate(xs).astype(np.float32)
    bad = ~np.isfinite(x.reshape(len(x), int(np.prod(task.x_shape)))).all(axis=1)
    if bad.any():
        example = theta[bad][0].tolist()
        raise FloatingPointError(
            f"task {task.name!r} ({origin(task)}) produced {int(bad.sum())} non-finite observations in "
            f"[{start}, {stop}) of split {split!r}, e.g. at theta={example}"
        )
    return theta, x


def check_output(task: Task, theta: np.ndarray, x: object) -> None:
    """Refuse a simulator's output that is not a real array of shape (N, *x_shape)."""
    expected = (len(theta), *task.x_shape)
    if isinstance(x, np.ndarray) and x.shape == expected and x.dtype.kind in "fiu":
        return
    got = f"{type(x).__name__} of shape {x.shape} and dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
    raise ValueError(
        f"task {task.name!r} ({origin(task)}): simulate returned a {got} for theta of shape "
        f"{theta.shape} (first row theta={theta[0].tolist()}); expected a real-valued numpy "
        f"array of shape {expected}"
    )


def find_failing(task: Task, theta: np.ndarray) -> np.ndarray | None:
    """The first parameter on which the simulator raises when run alone, if any."""
    for row in theta:
        try:
            task.simulate(row[None], np.random.default_rng(0))
        except Exception:
            return row
    return None


def blocks(n: int, block_size: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` ranges that cut ``n`` pairs into blocks of ``block_size``."""
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    return [(a, min(a + block_size, n)) for a in range(0, n, block_size)]
