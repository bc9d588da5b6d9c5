"""What produced a file: package version, git commit, command line and library versions."""

import platform
import subprocess
import sys
from pathlib import Path

import numpy

from . import __version__


def library_versions() -> dict[str, str]:
    """Versions of Python, numpy and of torch, h5py and pandas when they are loaded."""
    libraries = {"python": platform.python_version(), "numpy": numpy.__version__}
    for name in ("torch", "h5py", "pandas"):
        module = sys.modules.get(name)
        if module is not None:
            libraries[name] = str(module.__version__)
    return libraries


def git_commit() -> str | None:
    """The commit checked out where the package lives, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def provenance() -> dict:
    """Package version, git commit, command line and library versions of this process."""
    return {"version": __version__, "git_commit": git_commit(), "argv": sys.argv, "libraries": library_versions()}
