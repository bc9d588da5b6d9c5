r"""Training and validation pairs on the training device, loaded once or streamed.

The members of an ensemble train on subsets of one pool; only the union :math:`U` of their
subsets is ever needed. When :math:`x` of :math:`U` fits in ``memory_limit`` bytes it is
read once and kept on the device. Otherwise it is streamed from the HDF5 file through a
:class:`BlockCache` of whole pool blocks (sampling with ``block`` :math:`> 1`, see
:mod:`bnre.sampling`), so memory holds a bounded number of blocks whatever the pool size.
Both paths return the same batches, so the trained model does not depend on which is
taken. Parameters :math:`\theta` (a few numbers per pair) always stay in memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, Iterator, Protocol

import numpy as np
import torch
from torch import Tensor

from ..methods.losses import marginal_theta

#: Rows per chunk when statistics are accumulated over a member's training set.
STATS_CHUNK = 4096

Log = Callable[[str], None]


class PairsSource(Protocol):
    """In-memory :class:`bnre.simulation.pairs.Pairs` or an open :class:`bnre.simulation.pairs.PairsFile`."""

    theta: np.ndarray

    def __len__(self) -> int: ...

    @property
    def x_shape(self) -> tuple[int, ...]: ...

    @property
    def x_row_bytes(self) -> int: ...

    def read_x(self, rows: np.ndarray) -> np.ndarray: ...


class BlockCache:
    """``x`` of whole pool blocks of ``block`` rows in ``capacity`` device slots.

    :meth:`gather` reads the blocks a batch needs that are not cached, evicting the least
    recently used ones the batch does not need; ``reads`` counts blocks read.
    """

    def __init__(self, source: PairsSource, block: int, capacity: int, device: torch.device):
        self.source, self.block, self.capacity, self.device = source, block, capacity, device
        self.buffer = torch.empty((capacity * block, *source.x_shape), device=device)
        self.slots: OrderedDict[int, int] = OrderedDict()  # pool block -> slot
        self.free = list(range(capacity - 1, -1, -1))
        self.reads = 0

    def gather(self, rows: np.ndarray) -> Tensor:
        """``x`` at pool ``rows`` (any shape) as a device tensor of shape ``(*rows.shape, *x_shape)``."""
        blocks = rows // self.block
        needed = np.unique(blocks)
        if len(needed) > self.capacity:
            raise RuntimeError(f"a batch needs {len(needed)} blocks but the cache holds {self.capacity}")
        wanted = set(needed.tolist())
        for b in needed.tolist():
            if b in self.slots:
                self.slots.move_to_end(b)
                continue
            if not self.free:
                victim = next(v for v in self.slots if v not in wanted)
                self.free.append(self.slots.pop(victim))
            slot = self.free.pop()
            start = b * self.block
            stop = min(start + self.block, len(self.source))
            data = torch.from_numpy(self.source.read_x(np.arange(start, stop)))
            self.buffer[slot * self.block : slot * self.block + stop - start].copy_(data)
            self.slots[b] = slot
            self.reads += 1
        slot_of = np.array([self.slots[b] for b in needed.tolist()])
        flat = slot_of[np.searchsorted(needed, blocks)] * self.block + rows % self.block
        return self.buffer[torch.as_tensor(flat).to(self.device, non_blocking=True)]


class TrainingRows:
    r"""The members' training pairs, indexed by position in the union of their subsets.

    ``local[k, p]`` is the row in :math:`U` of position :math:`p` of member :math:`k`'s
    sorted subset; :meth:`theta` and :meth:`x` take such rows.
    """

    def __init__(
        self,
        source: PairsSource,
        subsets: list[np.ndarray],
        block: int,
        memory_limit: float,
        device: torch.device,
        log: Log = print,
        batch_size: int = 128,
    ):
        self.source, self.subsets, self.device = source, subsets, device
        self.union = np.unique(np.concatenate(subsets))
        self.local_cpu = torch.as_tensor(np.stack([np.searchsorted(self.union, s) for s in subsets]))
        self.local = self.local_cpu.to(device)
        self.theta_union = torch.as_tensor(source.theta[self.union], dtype=torch.float32, device=device)
        bytes_needed = len(self.union) * source.x_row_bytes
        self.streamed = bytes_needed > memory_limit
        if not self.streamed:
            self.x_union_cpu = source.read_x(self.union)
            self.x_union = torch.as_tensor(self.x_union_cpu, device=device)
            return
        if block == 1:
            raise ValueError(
                f"the training pairs ({bytes_needed / 2**20:.0f} MB of x) exceed memory_limit_mb "
                f"({memory_limit / 2**20:.0f} MB); set train.shuffle_block (e.g. 1024) to stream them "
                "from the HDF5 file in blocks, or raise memory_limit_mb"
            )
        # worst case per member: a batch spans ceil(batch / block) + 1 blocks
        batch_blocks = len(subsets) * (-(-batch_size // block) + 1)
        capacity = max(batch_blocks, int(memory_limit // (block * source.x_row_bytes)))
        self.cache = BlockCache(source, block, capacity, device)
        log(
            f"streaming {bytes_needed / 2**20:.0f} MB of training x from disk in blocks of {block} rows "
            f"({capacity} blocks, {capacity * block * source.x_row_bytes / 2**20:.0f} MB, in memory)"
        )

    def theta(self, local: Tensor) -> Tensor:
        return self.theta_union[local]

    def x(self, local: Tensor, local_cpu: Tensor) -> Tensor:
        """``x`` at union rows ``local`` (on the device), ``local_cpu`` the same on the CPU."""
        if not self.streamed:
            return self.x_union[local]
        return self.cache.gather(self.union[local_cpu.numpy()])

    def member_chunks(self, k: int) -> Iterator[Tensor]:
        """Member ``k``'s training ``x`` in chunks of :data:`STATS_CHUNK` rows, on the CPU."""
        subset = self.subsets[k]
        for a in range(0, len(subset), STATS_CHUNK):
            if self.streamed:
                yield torch.from_numpy(self.source.read_x(subset[a : a + STATS_CHUNK]))
            else:
                yield torch.from_numpy(self.x_union_cpu[self.local_cpu[k, a : a + STATS_CHUNK].numpy()])


class ValidationPairs:
    r"""Validation pairs :math:`(\theta_i, x_i, \theta'_i)` in chunks, kept or streamed.

    The marginal partners :math:`\theta'` are ``marginal(theta)`` of the whole set
    (by default :func:`bnre.methods.losses.marginal_theta`, :math:`\theta'_i = \theta_{i-1}`).
    """

    def __init__(
        self,
        source: PairsSource,
        memory_limit: float,
        device: torch.device,
        chunk: int = 4096,
        marginal: Callable[[Tensor], Tensor] = marginal_theta,
    ):
        self.source, self.device, self.chunk = source, device, chunk
        self.theta = torch.as_tensor(source.theta, dtype=torch.float32, device=device)
        self.theta_marginal = marginal(self.theta)
        self.streamed = len(source) * source.x_row_bytes > memory_limit
        self.x_all = None if self.streamed else torch.as_tensor(source.read_x(np.arange(len(source))), device=device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for a in range(0, len(self.theta), self.chunk):
            b = min(a + self.chunk, len(self.theta))
            if self.x_all is None:
                x = torch.as_tensor(self.source.read_x(np.arange(a, b)), device=self.device)
            else:
                x = self.x_all[a:b]
            yield self.theta[a:b], x, self.theta_marginal[a:b]

    def __len__(self) -> int:
        return math.ceil(len(self.theta) / self.chunk)
