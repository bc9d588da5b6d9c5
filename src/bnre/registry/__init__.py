"""What the package and the workflow both know, in one place: the methods and the training
options each uses (:mod:`.methods`), the built-in tasks and which are tractable
(:mod:`.tasks`).

A method is a module under :mod:`bnre.methods` and one line in
:data:`bnre.registry.methods.METHODS`; a task a module under :mod:`bnre.tasks` and one line
in :data:`bnre.registry.tasks.TASKS`. Entries name their class as ``"module:Class"``, so
that reading them imports nothing: the workflow (:mod:`bnre.workflow`) reads them where
the package's dependencies may not be installed, and :mod:`bnre.workflow.sourcegraph` counts the
module an entry names as imported by the package that holds it. Standard library only; this package's
``__init__`` imports neither submodule, so that a simulation job does not depend on the
methods' registry.

Imports: nothing of bnre.
"""

from __future__ import annotations

import importlib


def resolve(target: str):
    """The object ``"module:name"`` names (imports the module)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
