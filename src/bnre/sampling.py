r"""Which pairs of the training pool a member sees, and in which order.

Member :math:`k` with seed :math:`s_k` trains on a subset of :math:`B` rows of a pool of
:math:`N` i.i.d. simulated pairs and visits it in a new random order every epoch; both
are deterministic functions of :math:`s_k` (and the epoch), so runs can be resumed and
repeated exactly.

With ``block`` :math:`= 1` (the default) the subset is :math:`B` rows drawn without
replacement and each epoch is a uniform permutation. With ``block`` :math:`= b > 1` the
pool is cut into blocks of :math:`b` consecutive rows: the subset is the first :math:`B`
rows of randomly drawn whole blocks, and each epoch visits the member's blocks in a random
order, shuffling rows within each block. Because pool rows are i.i.d., a block is as
random a sample as any other set of :math:`b` rows; the only change is that a batch draws
its rows from one or two blocks, which is what lets a pool larger than memory be read
from disk sequentially (:mod:`bnre.training.stream`).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import Tensor


def member_seed(seed: int, task: str, budget: int, member: int) -> int:
    """The 63-bit seed of ensemble member ``member``: ``SeedSequence(seed, spawn_key=(crc32(task),
    budget, member))``. It does not depend on the method, so member :math:`k` of every
    method shares its initialisation and its data (a paired comparison)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(task.encode()), budget, member))
    return int(sequence.generate_state(2, np.uint64)[0] >> np.uint64(1))


def member_subset(seed: int, pool: int, budget: int, block: int = 1) -> np.ndarray:
    """Sorted pool rows of a member's training set of ``budget`` pairs."""
    if budget > pool:
        raise ValueError(f"budget {budget} exceeds the training pool of {pool} pairs")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    rng = np.random.default_rng(seed)
    if block == 1:
        return np.sort(rng.permutation(pool)[:budget])
    blocks = rng.permutation(-(-pool // block))
    sizes = np.minimum(block, pool - blocks * block)
    taken = int(np.searchsorted(np.cumsum(sizes), budget)) + 1
    rows = np.concatenate([np.arange(b * block, min((b + 1) * block, pool)) for b in blocks[:taken]])
    return np.sort(rows[:budget])


def epoch_order(
    seed: int,
    epoch: int,
    n: int,
    device: torch.device | str = "cpu",
    groups: np.ndarray | None = None,
) -> Tensor:
    """The order in which a member visits its ``n`` training pairs at ``epoch``.

    Without ``groups`` a uniform permutation; with ``groups`` (the pool block of each of
    the ``n`` positions) the blocks in a random order, and rows shuffled within blocks.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    if groups is None:
        return torch.randperm(n, generator=generator).to(device)
    _, inverse = np.unique(groups, return_inverse=True)
    rank = torch.randperm(int(inverse.max()) + 1, generator=generator)
    within = torch.randperm(n, generator=generator)
    key = rank[torch.as_tensor(inverse, dtype=torch.long)] * n + within
    return torch.argsort(key).to(device)


def position_blocks(subset: np.ndarray, block: int) -> np.ndarray | None:
    """The pool block of every position of a member's subset (``None`` when ``block`` is 1)."""
    return None if block == 1 else subset // block


def marginal_permutations(seed: int, epoch: int, budget: int, batch: int) -> list[Tensor]:
    """For each batch of ``epoch``, the random permutation of its pairs that pairs them
    with marginal partners (``marginals="permute"``); deterministic in (seed, epoch), and a
    stream apart from :func:`epoch_order`'s."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63 ^ 0x6D617267)
    return [torch.randperm(min(batch, budget - a), generator=generator) for a in range(0, budget, batch)]


def batch_draws_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The generator of the random draws of batch ``step`` of ``epoch`` that an objective needs
    beyond the pairs (the calibration regulariser's): deterministic in (seed, epoch, step), so
    stacked, single and resumed runs draw alike, and a stream apart from the batches' order."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x64726177, epoch, step)))


def validation_draws_rng(seed: int) -> np.random.Generator:
    """The generator of the validation set's draws, fixed for a root ``seed`` across epochs."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x76616C64,)))
