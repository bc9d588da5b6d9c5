"""Out-of-core training data: bnre's block cache vs a torch DataLoader over h5py.

Run from the repository root::

    python benchmarks/streaming.py [--pool 32768] [--budget 16384] [--members 5]

A Lotka–Volterra-shaped pool (x of 1001×2 float32, 8 kB per pair; random values, the
content does not matter for I/O) is written to an HDF5 file in a temporary directory.
Three ways of producing one epoch of batches (128 pairs) for K members with
``train.shuffle_block = 1024``:

* in memory: the union of the members' rows read once, batches gathered on the device;
* streamed: :class:`bnre.training.stream.BlockCache` with a memory limit of 1/8 of the union;
* the peer: ``torch.utils.data.DataLoader`` with ``shuffle=True`` over a map-style dataset
  whose ``__getitem__`` reads ``h5py_dataset[i]``, once per member over its rows (what a
  user writes to train on an HDF5 file larger than memory).

Then one epoch of real training of the task's CNN (K = 2, 2^12 pairs) in memory and
streamed, to show what the streaming costs inside training. The file sits in the page
cache after it is written, so this measures the software overhead, not the disk.

Ends with ``stream speedup_vs_dataloader=<x> training_overhead=<y>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import device_name

import h5py
import numpy as np
import torch

from bnre.methods import build_estimator
from bnre.methods.config import TrainConfig
from bnre.sampling import epoch_order, member_subset, position_blocks
from bnre.sampling import member_seed
from bnre.simulation.pairs import Pairs, open_pairs, write_pairs
from bnre.tasks import get_task
from bnre.training.fit import fit_ensemble
from bnre.training.stream import TrainingRows

BLOCK = 1024
BATCH = 128


def epoch_batches(rows: TrainingRows, subsets: list[np.ndarray], seeds: list[int]) -> float:
    """Seconds to produce every batch of one epoch, as the trainer does."""
    budget = len(subsets[0])
    start = time.perf_counter()
    orders = torch.stack([epoch_order(s, 1, budget, groups=position_blocks(m, BLOCK)) for s, m in zip(seeds, subsets)])
    checksum = 0.0
    for a in range(0, budget, BATCH):
        local = torch.gather(rows.local_cpu, 1, orders[:, a : a + BATCH])
        checksum += float(rows.x(local, local)[:, 0, 0, 0].sum())
    return time.perf_counter() - start


def dataloader_epoch(path: Path, subsets: list[np.ndarray]) -> float:
    """Seconds for a shuffled DataLoader over h5py rows to yield every member's batches."""

    class Rows(torch.utils.data.Dataset):
        def __init__(self, rows: np.ndarray):
            self.rows = rows
            self.x = h5py.File(path, "r")["x"]

        def __len__(self) -> int:
            return len(self.rows)

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.from_numpy(self.x[self.rows[i]])

    start = time.perf_counter()
    for k, subset in enumerate(subsets):
        generator = torch.Generator().manual_seed(k)
        loader = torch.utils.data.DataLoader(Rows(subset), batch_size=BATCH, shuffle=True, generator=generator)
        for batch in loader:
            float(batch[:, 0, 0].sum())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=2**15)
    parser.add_argument("--budget", type=int, default=2**14)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()
    task = get_task("lotka_volterra")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pool.h5"
        theta = task.prior.sample(args.pool, rng).astype(np.float32)
        x = rng.random((args.pool, *task.x_shape), dtype=np.float32)
        write_pairs(path, theta, x, task=task.name, split="train", seed=0, start=0, stop=args.pool)
        del x
        seeds = [member_seed(0, task.name, args.budget, k) for k in range(args.members)]
        subsets = [member_subset(s, args.pool, args.budget, BLOCK) for s in seeds]
        cpu = torch.device("cpu")
        print(f"device: {device_name()}; pool {args.pool} pairs ({args.pool * 8008 / 2**20:.0f} MiB), "
              f"K={args.members}, budget {args.budget}, block {BLOCK}, batch {BATCH}")
        with open_pairs(path) as source:
            union_bytes = len(np.unique(np.concatenate(subsets))) * source.x_row_bytes
            start = time.perf_counter()
            loaded = TrainingRows(source, subsets, BLOCK, 2**40, cpu, log=lambda _: None)
            load_seconds = time.perf_counter() - start
            streamed = TrainingRows(source, subsets, BLOCK, union_bytes / 8, cpu, log=print)
            in_memory = min(epoch_batches(loaded, subsets, seeds) for _ in range(2))
            stream = min(epoch_batches(streamed, subsets, seeds) for _ in range(2))
        peer = dataloader_epoch(path, subsets)
        pairs = args.members * args.budget
        print(f"in memory: read once {load_seconds:.2f} s, then {pairs / in_memory:,.0f} pairs/s")
        print(f"streamed (cache {streamed.cache.capacity} blocks = 1/8 of the data): {pairs / stream:,.0f} pairs/s, "
              f"{streamed.cache.reads} block reads over 2 epochs")
        print(f"DataLoader over h5py rows: {pairs / peer:,.0f} pairs/s")

        # real training, one epoch, in memory vs streamed
        small = [member_subset(s, args.pool, 2**12, BLOCK) for s in seeds[:2]]
        seconds = {}
        for name, limit in (("in memory", 4096.0), ("streamed", 2**12 * 2 * 8008 / 8 / 2**20)):
            config = TrainConfig(replicates=2, epochs=1, shuffle_block=BLOCK, memory_limit_mb=limit, hidden=[256] * 6)
            estimators = []
            for seed in seeds[:2]:
                torch.manual_seed(seed)
                estimators.append(build_estimator(task, config.hidden, config.activation))
            val = Pairs(theta[:256], rng.random((256, *task.x_shape), dtype=np.float32), {})
            with open_pairs(path) as source:
                start = time.perf_counter()
                fit_ensemble(task, estimators, seeds[:2], small, source, val, config, log=lambda _: None)
                seconds[name] = time.perf_counter() - start
            print(f"training epoch ({name}): {seconds[name]:.2f} s")
    overhead = seconds["streamed"] / seconds["in memory"]
    print(f"stream speedup_vs_dataloader={peer / stream:.1f} training_overhead={overhead:.3f}")


if __name__ == "__main__":
    main()
