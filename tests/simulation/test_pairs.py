"""HDF5 storage: round trip, merge, and clear errors on bad files."""

import h5py
import numpy as np
import pytest

from bnre import __version__
from bnre.simulation.pairs import merge_pairs, open_pairs, read_pairs, write_pairs
from bnre.simulation.simulate import blocks, simulate_range
from bnre.tasks import get_task


def write_block(path, start, stop, seed=5, task="slcp", split="train"):
    theta, x = simulate_range(get_task(task), split, seed, start, stop)
    write_pairs(path, theta, x, task=task, split=split, seed=seed, start=start, stop=stop)


def test_round_trip_with_attributes(tmp_path):
    path = tmp_path / "a.h5"
    write_block(path, 0, 300)
    pairs = read_pairs(path, task="slcp")
    theta, x = simulate_range(get_task("slcp"), "train", 5, 0, 300)
    assert np.array_equal(pairs.theta, theta) and np.array_equal(pairs.x, x)
    assert pairs.attrs["task"] == "slcp" and pairs.attrs["seed"] == 5
    assert pairs.attrs["n"] == 300 and pairs.attrs["version"] == __version__
    with h5py.File(path) as f:
        assert f["theta"].dtype == np.float32 and f["x"].dtype == np.float32
        assert f["theta"].chunks is not None and f["x"].chunks is not None
    assert len(read_pairs(path, rows=10)) == 10


def test_merged_blocks_equal_one_block(tmp_path):
    paths = []
    for i, (a, b) in enumerate(blocks(1000, 300)):
        paths.append(tmp_path / f"{i}.h5")
        write_block(paths[-1], a, b)
    merge_pairs(paths, tmp_path / "merged.h5")
    write_block(tmp_path / "one.h5", 0, 1000)
    merged, one = read_pairs(tmp_path / "merged.h5"), read_pairs(tmp_path / "one.h5")
    assert np.array_equal(merged.theta, one.theta) and np.array_equal(merged.x, one.x)
    for key in ("task", "split", "seed", "start", "stop", "n"):
        assert merged.attrs[key] == one.attrs[key]
    with h5py.File(tmp_path / "merged.h5") as f, h5py.File(tmp_path / "one.h5") as g:
        assert f["x"][:].tobytes() == g["x"][:].tobytes()


def test_merge_refuses_gaps_and_mixed_seeds(tmp_path):
    write_block(tmp_path / "a.h5", 0, 100)
    write_block(tmp_path / "c.h5", 200, 300)
    write_block(tmp_path / "d.h5", 100, 200, seed=6)
    with pytest.raises(ValueError, match="starts at 200, expected 100"):
        merge_pairs([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "m.h5")
    with pytest.raises(ValueError, match="seed=6"):
        merge_pairs([tmp_path / "a.h5", tmp_path / "d.h5"], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_bad_files_give_clear_errors(tmp_path):
    write_block(tmp_path / "good.h5", 0, 100)
    with pytest.raises(ValueError, match="holds task 'slcp', expected 'gaussian'"):
        read_pairs(tmp_path / "good.h5", task="gaussian")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((tmp_path / "good.h5").read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.h5: not a readable HDF5 file"):
        read_pairs(truncated)
    with h5py.File(tmp_path / "nox.h5", "w") as f:
        f["theta"] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="missing dataset 'x'"):
        read_pairs(tmp_path / "nox.h5")
    with h5py.File(tmp_path / "nan.h5", "w") as f:
        f["theta"] = np.zeros((3, 2), np.float32)
        f["x"] = np.full((3, 8), np.nan, np.float32)
    with pytest.raises(ValueError, match="'x' holds non-finite values"):
        read_pairs(tmp_path / "nan.h5")
    with pytest.raises(ValueError, match="1000 rows requested but the file holds 100"):
        read_pairs(tmp_path / "good.h5", rows=1000)


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_pairs(tmp_path / "bad.h5", np.zeros((3, 2)), np.zeros((4, 2)))
    assert list(tmp_path.iterdir()) == []


def test_wrong_shapes_are_refused(tmp_path):
    write_block(tmp_path / "slcp.h5", 0, 10)
    with pytest.raises(ValueError, match=r"x has shape \(10, 8\), expected \(N, 2\)"):
        read_pairs(tmp_path / "slcp.h5", x_shape=(2,))
    with pytest.raises(ValueError, match=r"theta has shape \(10, 2\), expected \(N, 3\)"):
        read_pairs(tmp_path / "slcp.h5", theta_dim=3)


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    write_block(tmp_path / "a.h5", 0, 10)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.h5").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_file_of_another_split_is_refused(tmp_path):
    # evaluating on validation (or training) pairs would silently report optimistic
    # metrics: a reader that names the split it wants must refuse any other
    write_block(tmp_path / "val.h5", 0, 50, split="val")
    for reader in (read_pairs, open_pairs):
        with pytest.raises(ValueError, match=r"val\.h5: holds the 'val' split, expected the 'test' split"):
            reader(tmp_path / "val.h5", split="test")
    assert len(read_pairs(tmp_path / "val.h5", split="val")) == 50
    with open_pairs(tmp_path / "val.h5", task="slcp", split="val") as f:
        assert len(f) == 50
    assert len(read_pairs(tmp_path / "val.h5")) == 50  # no split asked for: any split
    with h5py.File(tmp_path / "nosplit.h5", "w") as f:  # a file without the attribute
        f["theta"] = np.zeros((3, 2), np.float32)
        f["x"] = np.zeros((3, 8), np.float32)
    with pytest.raises(ValueError, match="nosplit.h5: holds the None split, expected the 'test' split"):
        read_pairs(tmp_path / "nosplit.h5", split="test")


def write_numbered(path, start, stop, n=None, **attrs):
    """A block [start, stop) whose row i holds the global row number start + i (exact in
    float32); ``n`` rows (default stop - start)."""
    rows = np.arange(start, start + (stop - start if n is None else n), dtype=np.float32)
    theta = np.stack([rows, -rows], axis=1)
    x = rows[:, None] + np.arange(8, dtype=np.float32) / 8
    attrs = dict(task="slcp", split="train", seed=5, start=start, stop=stop, provenance='{"block": %d}' % start) | attrs
    write_pairs(path, theta, x, **attrs)


def test_merged_file_has_every_row_of_its_blocks_once_and_in_order(tmp_path):
    ranges = [(300, 600), (600, 1000), (1000, 1007), (1007, 1008)]  # uneven sizes, not from 0
    paths = []
    for a, b in ranges:
        paths.append(tmp_path / f"{a}.h5")
        write_numbered(paths[-1], a, b)
    merge_pairs(paths, tmp_path / "merged.h5")
    merged = read_pairs(tmp_path / "merged.h5")
    total = sum(b - a for a, b in ranges)
    assert len(merged) == total == 708
    assert merged.theta.shape == (708, 2) and merged.x.shape == (708, 8)
    assert np.array_equal(merged.theta[:, 0], np.arange(300, 1008, dtype=np.float32))
    assert np.array_equal(merged.theta[:, 1], -np.arange(300, 1008, dtype=np.float32))
    assert np.array_equal(merged.x[:, 0], np.arange(300, 1008, dtype=np.float32))
    assert np.array_equal(merged.x[:, 7] - merged.x[:, 0], np.full(708, 7 / 8, np.float32))
    assert merged.attrs == {
        "task": "slcp", "split": "train", "seed": 5, "start": 300, "stop": 1008, "n": 708,
        "version": __version__, "provenance": '{"block": 300}',  # the first block's provenance
    }
    with h5py.File(tmp_path / "merged.h5") as f:
        assert f["theta"].dtype == np.float32 and f["x"].dtype == np.float32
    # a single block merges into a copy of itself
    merge_pairs(paths[:1], tmp_path / "one.h5")
    one = read_pairs(tmp_path / "one.h5")
    assert len(one) == 300 and (one.attrs["start"], one.attrs["stop"], one.attrs["n"]) == (300, 600, 300)
    assert np.array_equal(one.theta[:, 0], np.arange(300, 600, dtype=np.float32))


def test_merge_refuses_overlaps_repeats_disorder_and_mixed_splits(tmp_path):
    write_numbered(tmp_path / "a.h5", 0, 100)
    write_numbered(tmp_path / "b.h5", 100, 200)
    write_numbered(tmp_path / "overlap.h5", 50, 150)
    write_numbered(tmp_path / "val.h5", 100, 200, split="val")
    write_numbered(tmp_path / "task.h5", 100, 200, task="gaussian")
    cases = [
        (["a", "overlap"], "overlap.h5: starts at 50, expected 100"),
        (["a", "a"], "a.h5: starts at 0, expected 100"),  # a block merged twice
        (["b", "a"], "a.h5: starts at 0, expected 200"),  # blocks out of order
        (["a", "val"], "val.h5: split='val' differs from 'train'"),
        (["a", "task"], "task.h5: task='gaussian' differs from 'slcp'"),
    ]
    for names, message in cases:
        with pytest.raises(ValueError, match=message):
            merge_pairs([tmp_path / f"{name}.h5" for name in names], tmp_path / "m.h5")
        assert not (tmp_path / "m.h5").exists()
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_pairs([], tmp_path / "m.h5")


def test_merge_refuses_a_block_whose_rows_disagree_with_its_range(tmp_path):
    # a block that claims [100, 200) but holds 99 rows would make a merged file whose
    # `stop - start` (200) disagrees with its rows (199), shifting every later row's
    # global index (and so which pairs a budget's members are trained on)
    write_numbered(tmp_path / "a.h5", 0, 100)
    write_numbered(tmp_path / "short.h5", 100, 200, n=99)
    with pytest.raises(ValueError, match="short.h5: holds 99 rows, expected 100"):
        merge_pairs([tmp_path / "a.h5", tmp_path / "short.h5"], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
