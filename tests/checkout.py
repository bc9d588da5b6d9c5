"""A copy of this checkout's code, for tests that run the workflow on edited code."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what a run writes at the top of its directory (the package has a sub-package results/)
OUTPUTS = {"data", "models", "results", "figures", "logs", "studies"}
NEVER = {".git", ".snakemake", "__pycache__"}


def copy_checkout(destination: Path) -> Path:
    """Copy the checkout's code to ``destination``: no version control, caches or outputs."""

    def ignore(directory, names):
        top = Path(directory) == ROOT
        return {n for n in names if n in NEVER or (top and n in OUTPUTS)}

    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination
