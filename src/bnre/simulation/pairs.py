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

from .. import __version__
from ..io import atomic_path

ROWS_PER_CHUNK = 1024


@dataclass
class Pairs:
    """Simulated pairs and their metadata."""

    theta: np.ndarray
    x: np.ndarray
    attrs: dict

    def __len__(self) -> int:
        return len(self.theta)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def x_row_bytes(self) -> int:
        return int(np.prod(self.x_shape)) * 4

    def read_x(self, rows: np.ndarray) -> np.ndarray:
        """``x`` at the row indices ``rows``."""
        return np.asarray(self.x[rows], dtype=np.float32)


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """HDF5 chunk shape: up to ``ROWS_PER_CHUNK`` whole rows."""
    return (max(1, min(shape[0], ROWS_PER_CHUNK)), *shape[1:])


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
                f.create_dataset(name, data=array, chunks=_chunks(array.shape), track_times=False)
            f.attrs["n"] = len(theta)
            f.attrs["version"] = __version__
            for key, value in attrs.items():
                f.attrs[key] = value


class PairsFile:
    """A pairs file opened for reading: ``theta`` in memory, ``x`` read on demand.

    For training sets larger than memory; rows are read by :meth:`read_x` and checked
    for non-finite values as they are read. Use as a context manager or :meth:`close`.
    """

    def __init__(self, path: Path, file: h5py.File, theta: np.ndarray, attrs: dict):
        self.path, self.file, self.theta, self.attrs = path, file, theta, attrs
        self.x_dataset = file["x"]
        self.x_shape = tuple(self.x_dataset.shape[1:])

    def __len__(self) -> int:
        return len(self.theta)

    @property
    def x_row_bytes(self) -> int:
        return int(np.prod(self.x_shape)) * 4

    def read_x(self, rows: np.ndarray, span: int = 4096) -> np.ndarray:
        """``x`` at the sorted row indices ``rows``, reading contiguous spans of the file."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.x_shape), dtype=np.float32)
        a = 0
        while a < len(rows):
            b = int(np.searchsorted(rows, rows[a] - rows[a] % span + span))
            first, last = int(rows[a]), int(rows[b - 1])
            block = self.x_dataset[first : last + 1]
            out[a:b] = block[rows[a:b] - first]
            bad = np.flatnonzero(~np.isfinite(out[a:b].reshape(b - a, -1)).all(axis=1))
            if len(bad):
                raise ValueError(
                    f"{self.path}: dataset 'x' holds non-finite values in row {rows[a + bad[0]]}"
                    + (f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else "")
                )
            a = b
        return out

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "PairsFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_pairs(
    path: str | os.PathLike,
    task: str | None = None,
    theta_dim: int | None = None,
    x_shape: tuple[int, ...] | None = None,
    split: str | None = None,
) -> PairsFile:
    """Open a pairs file after checking its structure (see :func:`read_pairs`).

    ``theta`` is read and checked at once; ``x`` stays in the file.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    try:
        for name in ("theta", "x"):
            if name not in f:
                raise ValueError(f"{path}: missing dataset {name!r}")
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in f.attrs.items()}
        if task is not None and attrs.get("task") != task:
            raise ValueError(f"{path}: holds task {attrs.get('task')!r}, expected {task!r}")
        if split is not None and attrs.get("split") != split:
            raise ValueError(f"{path}: holds the {attrs.get('split')!r} split, expected the {split!r} split")
        if theta_dim is not None and f["theta"].shape[1:] != (theta_dim,):
            raise ValueError(f"{path}: theta has shape {f['theta'].shape}, expected (N, {theta_dim})")
        if x_shape is not None and f["x"].shape[1:] != tuple(x_shape):
            raise ValueError(f"{path}: x has shape {f['x'].shape}, expected (N, {', '.join(map(str, x_shape))})")
        n = f["theta"].shape[0]
        if f["x"].shape[0] != n:
            raise ValueError(f"{path}: theta has {n} rows but x has {f['x'].shape[0]}")
        theta = f["theta"][:]
        if not np.isfinite(theta).all():
            raise ValueError(f"{path}: dataset 'theta' holds non-finite values")
    except BaseException:
        f.close()
        raise
    return PairsFile(path, f, theta, attrs)


def read_pairs(
    path: str | os.PathLike,
    task: str | None = None,
    rows: int | None = None,
    theta_dim: int | None = None,
    x_shape: tuple[int, ...] | None = None,
    split: str | None = None,
) -> Pairs:
    """Read a pairs file, checking its structure; ``rows`` keeps only the first rows.

    Raises ``ValueError`` naming the file when it is unreadable, lacks ``theta`` or ``x``,
    belongs to another task or (with ``split``) to another split, has shapes other than
    ``(N, theta_dim)`` and ``(N, *x_shape)``, or holds non-finite values.
    """
    with open_pairs(path, task, theta_dim, x_shape, split) as source:
        n = len(source)
        stop = n if rows is None else rows
        if stop > n:
            raise ValueError(f"{source.path}: {rows} rows requested but the file holds {n}")
        x = source.x_dataset[:stop]
        if not np.isfinite(x).all():
            raise ValueError(f"{source.path}: dataset 'x' holds non-finite values")
        return Pairs(source.theta[:stop], x, source.attrs)


def merge_pairs(paths: Sequence[str | os.PathLike], output: str | os.PathLike) -> None:
    """Concatenate block files (in the given order, which must be contiguous) into one.

    Blocks are checked first and then copied one at a time, so the merged file may be
    larger than memory.
    """
    if not paths:
        raise ValueError("nothing to merge")
    parts = []
    for path in paths:
        with open_pairs(path) as part:
            parts.append((path, part.attrs, len(part), part.x_shape, part.theta.shape[1:]))
    first = parts[0][1]
    expected = int(first["start"])
    for path, attrs, n, x_shape, theta_shape in parts:
        for key in ("task", "split", "seed"):
            if attrs[key] != first[key]:
                raise ValueError(f"{path}: {key}={attrs[key]!r} differs from {first[key]!r}")
        if int(attrs["start"]) != expected:
            raise ValueError(f"{path}: starts at {attrs['start']}, expected {expected}")
        if (x_shape, theta_shape) != (parts[0][3], parts[0][4]):
            raise ValueError(f"{path}: shapes theta {theta_shape}, x {x_shape} differ from the first block's")
        if n != int(attrs["stop"]) - int(attrs["start"]):
            raise ValueError(f"{path}: holds {n} rows, expected {int(attrs['stop']) - int(attrs['start'])} (its range [{attrs['start']}, {attrs['stop']}))")
        expected = int(attrs["stop"])
    total = sum(n for _, _, n, _, _ in parts)
    attrs = dict(task=first["task"], split=first["split"], seed=first["seed"], start=int(first["start"]), stop=expected)
    attrs.update({key: first[key] for key in ("provenance",) if key in first})
    with atomic_path(output) as tmp:
        with h5py.File(tmp, "w") as f:
            shapes = {"theta": (total, *parts[0][4]), "x": (total, *parts[0][3])}
            datasets = {
                name: f.create_dataset(name, shape=shape, dtype=np.float32, chunks=_chunks(shape), track_times=False)
                for name, shape in shapes.items()
            }
            row = 0
            for path, *_ in parts:
                block = read_pairs(path)
                datasets["theta"][row : row + len(block)] = block.theta
                datasets["x"][row : row + len(block)] = block.x
                row += len(block)
            f.attrs["n"] = total
            f.attrs["version"] = __version__
            for key, value in attrs.items():
                f.attrs[key] = value
