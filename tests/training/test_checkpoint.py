"""Checkpoints: atomic saves, resuming only one's own run, SIGTERM."""

import os
import signal

import pytest
import torch

from bnre.training.checkpoint import FORMAT, Checkpointer, Interrupted, config_fingerprint


def test_fingerprint_is_of_the_content_not_the_key_order():
    assert config_fingerprint({"a": 1, "b": [2, 3]}) == config_fingerprint({"b": [2, 3], "a": 1})
    assert config_fingerprint({"a": 1}) != config_fingerprint({"a": 2})


def test_a_checkpoint_resumes_only_its_own_run(tmp_path):
    path = tmp_path / "m.pt.checkpoint"
    assert Checkpointer(path, "abc", 0).load() is None  # nothing saved yet
    Checkpointer(path, "abc", 0).save({"epoch": 3, "weights": torch.arange(4)})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    state = Checkpointer(path, "abc", 0).load()
    assert state["epoch"] == 3 and torch.equal(state["weights"], torch.arange(4)) and state["format"] == FORMAT
    messages = []
    assert Checkpointer(path, "other", 0, log=messages.append).load() is None
    assert "belongs to another configuration" in messages[0]
    torch.save({"format": FORMAT - 1, "fingerprint": "abc"}, path)  # an older layout
    assert Checkpointer(path, "abc", 0, log=messages.append).load() is None
    Checkpointer(path, "abc", 0).remove()
    assert not path.exists()


def test_periodic_saves_wait_for_their_interval(tmp_path):
    path = tmp_path / "c"
    with Checkpointer(path, "f", seconds=3600) as checkpointer:
        checkpointer.save_if_due(lambda: {"epoch": 1})
        assert not path.exists()
    with Checkpointer(path, "f", seconds=0) as checkpointer:
        checkpointer.save_if_due(lambda: {"epoch": 2})
    assert Checkpointer(path, "f", 0).load()["epoch"] == 2
    Checkpointer(None, "f", 0).save({"epoch": 3})  # without a path nothing is written


def test_sigterm_saves_then_interrupts_and_the_handler_is_restored(tmp_path):
    path = tmp_path / "c"
    before = signal.getsignal(signal.SIGTERM)
    with Checkpointer(path, "f", seconds=3600) as checkpointer:
        checkpointer.interrupt(lambda: {"epoch": 0}, "epoch 0")  # no signal yet: nothing happens
        assert not path.exists()
        os.kill(os.getpid(), signal.SIGTERM)
        assert checkpointer.terminated
        with pytest.raises(Interrupted, match="epoch 5, step 7"):
            checkpointer.interrupt(lambda: {"epoch": 5}, "epoch 5, step 7")
    assert Checkpointer(path, "f", 0).load()["epoch"] == 5
    assert signal.getsignal(signal.SIGTERM) == before
