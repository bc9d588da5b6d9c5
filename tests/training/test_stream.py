import numpy as np
import pytest
import torch

from bnre.sampling import epoch_order, member_subset, position_blocks
from bnre.simulation.pairs import open_pairs, write_pairs
from bnre.training.stream import TrainingRows, ValidationPairs

CPU = torch.device("cpu")


@pytest.fixture
def pool_file(tmp_path):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(5000, 2)).astype(np.float32)
    x = rng.normal(size=(5000, 3, 4)).astype(np.float32)  # 48 bytes per row
    write_pairs(tmp_path / "pool.h5", theta, x, task="t", split="train", seed=0, start=0, stop=5000)
    return tmp_path / "pool.h5", theta, x


def subsets(block, k=3, budget=1000, pool=5000):
    return [member_subset(seed, pool, budget, block) for seed in range(k)]


def test_streamed_batches_equal_the_in_memory_ones_with_bounded_memory(pool_file):
    path, theta, x = pool_file
    members = subsets(100)
    with open_pairs(path) as source:
        loaded = TrainingRows(source, members, 100, 2**30, CPU, log=lambda _: None)
        streamed = TrainingRows(source, members, 100, 30_000, CPU, log=lambda _: None, batch_size=64)
        assert not loaded.streamed and streamed.streamed
        # 30 kB holds 6 blocks of 100 rows: far fewer than the ~30 blocks of the union
        assert streamed.cache.capacity == 6 and len(streamed.union) >= 2000
        assert streamed.cache.buffer.numel() * 4 <= 30_000
        orders = torch.stack([epoch_order(s, 1, 1000, groups=position_blocks(m, 100)) for s, m in enumerate(members)])
        for step in range(0, 1000, 64):
            local = torch.gather(loaded.local, 1, orders[:, step : step + 64])
            expected = torch.as_tensor(x[loaded.union[local.numpy()]])
            assert torch.equal(loaded.x(local, local), expected)
            assert torch.equal(streamed.x(local, local), expected)
            assert torch.equal(streamed.theta(local), torch.as_tensor(theta[loaded.union[local.numpy()]]))
        # each member block is read about once per epoch (sequential reading)
        blocks_used = len(np.unique(np.concatenate(members) // 100))
        assert streamed.cache.reads <= blocks_used + 6
        for k in range(3):
            assert torch.equal(torch.cat(list(streamed.member_chunks(k))), torch.cat(list(loaded.member_chunks(k))))


def test_blocks_smaller_than_a_batch_still_fit_the_cache(pool_file):
    path, _, x = pool_file
    members = subsets(16)
    with open_pairs(path) as source:
        rows = TrainingRows(source, members, 16, 1, CPU, log=lambda _: None, batch_size=64)
        assert rows.cache.capacity == 3 * (64 // 16 + 1)  # the limit is below one batch's blocks
        orders = torch.stack([epoch_order(s, 2, 1000, groups=position_blocks(m, 16)) for s, m in enumerate(members)])
        for step in range(0, 1000, 64):
            local = torch.gather(rows.local, 1, orders[:, step : step + 64])
            assert torch.equal(rows.x(local, local), torch.as_tensor(x[rows.union[local.numpy()]]))


def test_streaming_without_blocks_is_refused_with_advice(pool_file):
    with open_pairs(pool_file[0]) as source, pytest.raises(ValueError, match="set train.shuffle_block"):
        TrainingRows(source, subsets(1), 1, 1000, CPU)


def test_non_finite_x_in_used_rows_is_named(tmp_path):
    x = np.ones((300, 2), dtype=np.float32)
    x[123, 1] = np.nan
    write_pairs(tmp_path / "nan.h5", np.zeros((300, 1)), x, task="t")
    with open_pairs(tmp_path / "nan.h5") as source:
        assert source.read_x(np.arange(100)).shape == (100, 2)  # clean rows read fine
        with pytest.raises(ValueError, match=r"nan.h5: dataset 'x' holds non-finite values in row 123$"):
            source.read_x(np.arange(100, 200))


def test_sparse_rows_are_read_exactly(pool_file):
    path, _, x = pool_file
    rows = np.sort(np.random.default_rng(1).choice(5000, 700, replace=False))
    with open_pairs(path) as source:
        assert np.array_equal(source.read_x(rows), x[rows])


def test_validation_streamed_equals_loaded(pool_file):
    with open_pairs(pool_file[0]) as source:
        loaded = list(ValidationPairs(source, 2**30, CPU, chunk=1000))
        streamed_set = ValidationPairs(source, 1000, CPU, chunk=1000)
        assert streamed_set.streamed and streamed_set.x_all is None
        for a, b in zip(loaded, streamed_set, strict=True):
            for u, v in zip(a, b):
                assert torch.equal(u, v)
        # marginal parameters are the whole set rolled by one, across chunk boundaries
        theta = torch.cat([t for t, _, _ in loaded])
        assert torch.equal(torch.cat([tm for _, _, tm in loaded]), torch.roll(theta, 1, 0))
