"""bnre.provenance: what produced a file, against independent sources of the same facts."""

import json
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy
import pytest
import torch

import bnre
from bnre import provenance as prov

ROOT = Path(__file__).resolve().parents[1]


def test_library_versions_are_those_of_the_running_interpreter_and_libraries():
    libraries = prov.library_versions()
    assert libraries["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert libraries["numpy"] == numpy.__version__
    assert libraries["torch"] == str(torch.__version__)  # torch is loaded here
    assert all(type(v) is str for v in libraries.values())


def test_only_loaded_optional_libraries_are_reported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "h5py", raising=False)
    monkeypatch.setitem(sys.modules, "pandas", types.SimpleNamespace(__version__="9.8.7"))
    assert prov.library_versions() == {"python": "{}.{}.{}".format(*sys.version_info[:3]),
                                       "numpy": numpy.__version__, "pandas": "9.8.7"}


def test_git_commit_is_the_checkout_head_whatever_the_working_directory(monkeypatch, tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    monkeypatch.chdir(tmp_path)  # a job runs in the workflow's directory, not the checkout's
    commit = prov.git_commit()
    assert commit == head.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)


def test_git_commit_is_none_outside_a_checkout(monkeypatch, tmp_path):
    package = tmp_path / "site-packages" / "bnre"
    package.mkdir(parents=True)
    monkeypatch.setattr(prov, "__file__", str(package / "provenance.py"))  # an installed copy
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above it
    assert prov.git_commit() is None


def test_git_commit_is_none_without_git(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert prov.git_commit() is None


def test_git_commit_is_none_when_git_hangs(monkeypatch):
    def hang(command, **kwargs):
        assert kwargs.get("timeout") is not None  # a hung git must not hang the job
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(prov.subprocess, "run", hang)
    assert prov.git_commit() is None


def test_provenance_records_version_commit_command_line_and_libraries_as_json(monkeypatch):
    argv = ["bnre", "simulate", "--task", "slcp", "--output", "data/slcp/train/block-0.h5"]
    monkeypatch.setattr(sys, "argv", argv)
    record = prov.provenance()
    assert set(record) == {"version", "git_commit", "argv", "libraries"}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert record["version"] == bnre.__version__ == version
    assert record["argv"] == argv
    assert record["git_commit"] == prov.git_commit()
    assert record["libraries"] == prov.library_versions()
    assert json.loads(json.dumps(record)) == record  # stored as a JSON attribute
    assert prov.provenance() == record  # stable within a process
