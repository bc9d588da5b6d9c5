import numpy as np
import pytest
import torch

from bnre.sampling import epoch_order, member_subset, position_blocks


def test_row_subsets_are_a_sorted_sample_without_replacement():
    subset = member_subset(7, 1000, 300)
    assert len(subset) == 300 and np.all(np.diff(subset) > 0) and subset.max() < 1000
    assert np.array_equal(subset, member_subset(7, 1000, 300))
    assert not np.array_equal(subset, member_subset(8, 1000, 300))


@pytest.mark.parametrize("pool, budget, block", [(1000, 300, 64), (1000, 1000, 64), (4096, 1024, 256), (999, 998, 100)])
def test_block_subsets_are_whole_blocks_but_one(pool, budget, block):
    subset = member_subset(3, pool, budget, block)
    assert len(subset) == budget and len(np.unique(subset)) == budget and subset.max() < pool
    blocks, counts = np.unique(subset // block, return_counts=True)
    full = np.minimum(block, pool - blocks * block)
    assert np.sum(counts < full) <= 1  # at most one block is used in part
    partial = blocks[counts < full]
    for b in partial:  # and that one is a prefix of its block
        rows = subset[subset // block == b]
        assert np.array_equal(rows, np.arange(b * block, b * block + len(rows)))


def test_member_subsets_cover_the_pool_evenly():
    """Over many members each pool row is used about budget/pool of the time."""
    counts = np.zeros(1024)
    for seed in range(400):
        counts[member_subset(seed, 1024, 256, 64)] += 1
    assert counts.mean() == 100 and counts.min() > 60 and counts.max() < 140


def test_budget_beyond_pool_is_refused():
    with pytest.raises(ValueError, match="budget 11 exceeds the training pool of 10"):
        member_subset(0, 10, 11, 4)


def test_row_order_is_a_fresh_permutation_each_epoch():
    a, b = epoch_order(5, 1, 100), epoch_order(5, 2, 100)
    assert sorted(a.tolist()) == list(range(100)) and not torch.equal(a, b)
    assert torch.equal(a, epoch_order(5, 1, 100))


def test_block_order_visits_blocks_one_after_another_shuffled_within():
    subset = member_subset(1, 4096, 1000, 128)
    groups = position_blocks(subset, 128)
    orders = [epoch_order(1, epoch, 1000, groups=groups) for epoch in (1, 2)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(1000))
        visited = groups[order.numpy()]
        changes = np.flatnonzero(np.diff(visited)) + 1
        runs = np.split(visited, changes)
        assert len(runs) == len(np.unique(groups))  # each block is one contiguous run
    assert not np.array_equal(groups[orders[0].numpy()][:128], groups[orders[1].numpy()][:128]) or not torch.equal(
        orders[0][:128], orders[1][:128]
    )
    first_run = orders[0][: int(np.sum(groups == groups[orders[0][0].item()]))].numpy()
    assert not np.all(np.diff(first_run) > 0)  # rows within a block are shuffled
