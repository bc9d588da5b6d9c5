"""bnre.io.atomic_path: a file at the target path is always complete."""

import os
import stat

import pytest

from bnre.io import atomic_path


class Boom(Exception):
    pass


def siblings(directory):
    return sorted(p.name for p in directory.iterdir())


def test_success_renames_the_complete_file_into_place_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_path(target) as tmp:
        # the temporary file is a hidden sibling (same directory: the rename is atomic),
        # and the target does not exist while it is being written
        assert tmp.parent == target.parent and tmp.name.startswith(".out.csv.") and tmp.exists()
        tmp.write_text("a,b\n1,2\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n1,2\n"
    assert siblings(tmp_path) == ["out.csv"]


def test_success_replaces_an_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(str(target)) as tmp:  # str paths too
        tmp.write_text("new")
        assert target.read_text() == "old"  # untouched until the body has finished
    assert target.read_text() == "new"
    assert siblings(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt, SystemExit], ids=lambda e: e.__name__)
def test_exception_leaves_an_existing_target_untouched_and_no_temporary_file(tmp_path, error):
    target = tmp_path / "model.pt"
    target.write_bytes(b"complete old model")
    with pytest.raises(error):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a new mod")
            raise error()
    assert target.read_bytes() == b"complete old model"
    assert siblings(tmp_path) == ["model.pt"]


def test_exception_leaves_no_target_when_there_was_none(tmp_path):
    target = tmp_path / "sub" / "dir" / "block.h5"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise Boom()
    assert not target.exists()
    assert siblings(target.parent) == []


def test_exception_after_the_body_removed_the_temporary_file(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.unlink()
            raise Boom()
    assert siblings(tmp_path) == []


def test_failed_rename_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:  # a file cannot replace a non-empty directory
            tmp.write_text("data")
    assert siblings(tmp_path) == ["busy"] and siblings(target) == ["keep"]


def test_missing_parent_directories_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    assert target.read_text() == "x"


def test_body_that_writes_nothing_gives_an_empty_file(tmp_path):
    target = tmp_path / "empty"
    with atomic_path(target):
        pass
    assert target.read_bytes() == b""


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"])
def test_file_gets_the_usual_permissions_under_the_umask(tmp_path, umask, mode):
    # mkstemp makes the temporary file 0600; the result must be 0666 & ~umask like open()
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "f") as tmp:
            tmp.write_text("x")
        with open(tmp_path / "plain", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == mode
    assert os.umask(old) == old  # the process umask is left as it was
    os.umask(old)


def test_concurrent_writers_use_distinct_temporary_files(tmp_path):
    target = tmp_path / "shared"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    # the outer context finishes last: its file wins, complete; nothing else is left
    assert target.read_text() == "first"
    assert siblings(tmp_path) == ["shared"]
