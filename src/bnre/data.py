r"""HDF5 storage of simulated pairs :math:`(\theta, x)`.

A file holds two chunked float32 datasets, ``theta`` (N×D) and ``x`` (N×…), and the
attributes ``task``, ``split``, ``seed``, ``n``, ``start``, ``stop`` and ``version``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from . import __version__
from .io import atomic_path

ROWS_PER_CHUNK = 1024


@dataclass
class Pairs:
    """Simulated pairs and their metadata."""

    theta: np.ndarray
    x: np.ndarray
    attrs: dict

    def __len__(self) -> int:
        return len(self.theta)


def write_pairs(
    path: str | os.PathLike, theta: np.ndarray, x: np.ndarray, **attrs: object
) -> None:
    """Write ``theta`` and ``x`` atomically to ``path`` with ``attrs``."""
    if len(theta) != len(x):
        raise ValueError(f"theta has {len(theta)} rows but x has {len(x)}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, array in (("theta", theta), ("x", x)):
                array = np.ascontiguousarray(array, dtype=np.float32)
                chunks = (max(1, min(len(array), ROWS_PER_CHUNK)), *array.shape[1:])
                f.create_dataset(name, data=array, chunks=chunks, track_times=False)
            f.attrs["n"] = len(theta)
            f.attrs["version"] = __version__
            for key, value in attrs.items():
                f.attrs[key] = value


def read_pairs(
    path: str | os.PathLike,
    task: str | None = None,
    rows: int | None = None,
    theta_dim: int | None = None,
    x_shape: tuple[int, ...] | None = None,
) -> Pairs:
    """Read a pairs file, checking its structure; ``rows`` keeps only the first rows.

    Raises ``ValueError`` naming the file when it is unreadable, lacks ``theta`` or ``x``,
    belongs to another task, has shapes other than ``(N, theta_dim)`` and
    ``(N, *x_shape)``, or holds non-finite values.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    with f:
        for name in ("theta", "x"):
            if name not in f:
                raise ValueError(f"{path}: missing dataset {name!r}")
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in f.attrs.items()}
        if task is not None and attrs.get("task") != task:
            raise ValueError(f"{path}: holds task {attrs.get('task')!r}, expected {task!r}")
        if theta_dim is not None and f["theta"].shape[1:] != (theta_dim,):
            raise ValueError(f"{path}: theta has shape {f['theta'].shape}, expected (N, {theta_dim})")
        if x_shape is not None and f["x"].shape[1:] != tuple(x_shape):
            raise ValueError(f"{path}: x has shape {f['x'].shape}, expected (N, {', '.join(map(str, x_shape))})")
        n = f["theta"].shape[0]
        if f["x"].shape[0] != n:
            raise ValueError(f"{path}: theta has {n} rows but x has {f['x'].shape[0]}")
        stop = n if rows is None else rows
        if stop > n:
            raise ValueError(f"{path}: {rows} rows requested but the file holds {n}")
        theta = f["theta"][:stop]
        x = f["x"][:stop]
    for name, array in (("theta", theta), ("x", x)):
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: dataset {name!r} holds non-finite values")
    return Pairs(theta, x, attrs)


def merge_pairs(paths: Sequence[str | os.PathLike], output: str | os.PathLike) -> None:
    """Concatenate block files (in the given order, which must be contiguous) into one."""
    if not paths:
        raise ValueError("nothing to merge")
    parts = [read_pairs(p) for p in paths]
    first = parts[0].attrs
    expected = int(first["start"])
    for path, part in zip(paths, parts):
        for key in ("task", "split", "seed"):
            if part.attrs[key] != first[key]:
                raise ValueError(f"{path}: {key}={part.attrs[key]!r} differs from {first[key]!r}")
        if int(part.attrs["start"]) != expected:
            raise ValueError(f"{path}: starts at {part.attrs['start']}, expected {expected}")
        expected = int(part.attrs["stop"])
    write_pairs(
        output,
        np.concatenate([p.theta for p in parts]),
        np.concatenate([p.x for p in parts]),
        task=first["task"],
        split=first["split"],
        seed=first["seed"],
        start=int(first["start"]),
        stop=expected,
        **{key: first[key] for key in ("provenance",) if key in first},
    )
