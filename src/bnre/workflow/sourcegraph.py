"""The package's import graph, by static analysis: what each command-line stage runs.

The workflow uses it to re-run exactly the jobs whose code changed (Snakemake only
tracks a rule's own shell command): each rule declares, as a parameter, the hash of the
code of the package modules that its ``python -m bnre <command>`` runs, restricted to the
job's task. The code is each module's syntax tree without docstrings, so that comments,
docstrings and layout re-run nothing; of the CLI module, only the parts the command runs.
The tests use it to check that every rule's conda environment provides the third-party
packages those modules import.

Conventions the analysis relies on (``bnre.cli`` follows them):

* :mod:`bnre.cli` runs command ``x-y`` through its function ``cmd_x_y``, and adds its
  arguments in ``args_x_y``: a command runs the CLI module's top-level statements and the
  functions and classes that they, ``main``, ``cmd_x_y`` and ``args_x_y`` reach by name
  (other commands' ``cmd_*`` and ``args_*`` excluded), and their imports, so what ``main``
  and ``parser`` reach must stay light;
* an import inside ``try: ... except ImportError`` is optional and not counted;
* :mod:`bnre.registry`'s modules name classes as ``"bnre.package.module:Class"`` strings, which
  ``bnre.package`` imports by name: that package counts as importing the module;
* a module under :mod:`bnre.tasks` that defines a class with a literal ``name = "..."``
  attribute implements that task: a job of task ``t`` depends on the task modules of
  ``t`` (and what they import) but not on other tasks' modules, even though the task
  registry imports them all.

Standard library only: the workflow loads this file before any dependency is installed.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

PACKAGE = Path(__file__).resolve().parents[1]
NAME = "bnre"
CLI = f"{NAME}.cli"
TASKS = f"{NAME}.tasks"
REGISTRY = f"{NAME}.registry"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    # scope (None: module level; else the enclosing top-level function) -> imported names
    internal: dict[str | None, set[str]] = field(default_factory=dict)
    external: dict[str | None, set[str]] = field(default_factory=dict)
    task_names: set[str] = field(default_factory=set)
    # top-level function or class -> the module's top-level names it refers to
    references: dict[str, set[str]] = field(default_factory=dict)


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join([NAME, *parts]), is_package


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            if isinstance(t, ast.Name) and t.id in ("ImportError", "ModuleNotFoundError"):
                return True
    return False


def _imports(tree: ast.Module):
    """Yield (scope, node) for every import not guarded by ``except ImportError``."""

    def visit(node: ast.AST, scope: str | None):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield scope, node
            return
        if isinstance(node, ast.Try) and _catches_import_error(node):
            # the guarded body is optional; handlers and the rest still run
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                yield from visit(child, scope)
            return
        for child in ast.iter_child_nodes(node):
            inner = scope
            if scope is None and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = child.name
            yield from visit(child, inner)

    yield from visit(tree, None)


def _task_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                targets = []
                if isinstance(stmt, ast.Assign):
                    targets, value = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    targets, value = [stmt.target], stmt.value
                for target in targets:
                    if (
                        isinstance(target, ast.Name)
                        and target.id == "name"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        names.add(value.value)
    return names


def _references(tree: ast.Module) -> dict[str, set[str]]:
    """Top-level function or class -> the top-level names of the module it uses."""
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return {
        node.name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in top} - {node.name}
        for node in tree.body
        if node.__class__.__name__ in ("FunctionDef", "AsyncFunctionDef", "ClassDef")
    }


def _function(command: str) -> str:
    return "cmd_" + command.replace("-", "_")


def _arguments(command: str) -> str:
    return "args_" + command.replace("-", "_")


#: Prefixes of the CLI's per-command functions: ``cmd_x_y`` runs ``x-y``, ``args_x_y`` adds its arguments.
_COMMAND_PARTS = ("cmd_", "args_")


@dataclass
class Graph:
    root: Path
    modules: dict[str, Module]

    def resolve(self, module: Module, node: ast.Import | ast.ImportFrom) -> tuple[set[str], set[str]]:
        """(package modules, third-party top-level names) that one import statement loads."""
        internal, external = set(), set()
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
            for name in targets:
                top = name.split(".")[0]
                if top == NAME:
                    internal.add(self._existing(name))
                elif not _is_stdlib(top):
                    external.add(top)
            return internal, external
        if node.level:
            package = module.name if module.is_package else module.name.rsplit(".", 1)[0]
            for _ in range(node.level - 1):
                package = package.rsplit(".", 1)[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        top = base.split(".")[0]
        if top != NAME:
            if top != "__future__" and not _is_stdlib(top):
                external.add(top)
            return internal, external
        internal.add(self._existing(base))
        for alias in node.names:
            if f"{base}.{alias.name}" in self.modules:  # ``from package import submodule``
                internal.add(f"{base}.{alias.name}")
        return internal, external

    def _existing(self, name: str) -> str:
        while name not in self.modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    def commands(self) -> list[str]:
        """The CLI's sub-commands (``cmd_x_y`` runs ``x-y``)."""
        return sorted(name[4:].replace("_", "-") for name in self.modules[CLI].references if name.startswith("cmd_"))

    def cli_scopes(self, command: str | None) -> set[str | None]:
        """The parts of the CLI module that ``command`` runs (``None``: module level)."""
        references = self.modules[CLI].references
        if command is None:
            return {None, *references}
        own = {_function(command), _arguments(command)}
        seen, stack = set(), ["main", *own]
        while stack:
            name = stack.pop()
            if name in seen or name not in references:
                continue
            seen.add(name)
            stack += [r for r in references[name] if not r.startswith(_COMMAND_PARTS) or r in own]
        return {None, *seen}

    def task_modules(self) -> dict[str, set[str]]:
        """Task name -> the modules that define it."""
        tasks: dict[str, set[str]] = {}
        for m in self.modules.values():
            for t in m.task_names:
                tasks.setdefault(t, set()).add(m.name)
        return tasks

    def _edges(self, name: str, command: str | None) -> set[str]:
        module = self.modules[name]
        scopes = self.cli_scopes(command) if name == CLI else None
        out = set()
        for scope, targets in module.internal.items():
            if scopes is None or scope in scopes:
                out |= targets
        # importing a.b.c runs the packages a and a.b first
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts))}
        return out

    def closure(self, starts: Iterable[str], command: str | None = None, exclude: set[str] = frozenset()) -> set[str]:
        seen, stack = set(), [s for s in starts if s not in exclude]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack += [m for m in self._edges(name, command) if m not in seen and m not in exclude]
        return seen

    def command_modules(self, command: str, task: str | None = None) -> set[str]:
        """The package modules ``python -m bnre <command>`` runs for a job of ``task``.

        ``task=None`` counts every task's modules (what an environment must support).
        """
        if command not in self.commands():
            raise ValueError(f"unknown command {command!r}; known: {self.commands()}")
        modules = self.closure([f"{NAME}.__main__", CLI], command)
        if task is None:
            return modules
        tasks = self.task_modules()
        own = tasks.get(task, set())
        foreign = set().union(*tasks.values()) - own
        # Other tasks' modules are left out (the task registry imports them all), unless
        # this task's own modules import them.
        allowed, frontier = set(), set(own)
        while frontier:
            for targets in self.modules[frontier.pop()].internal.values():
                for target in targets & (foreign - allowed):
                    allowed.add(target)
                    frontier.add(target)
        return self.closure([f"{NAME}.__main__", CLI], command, exclude=foreign - allowed)

    def third_party(self, modules: Iterable[str], command: str | None = None) -> set[str]:
        """Top-level names of the non-standard-library modules that ``modules`` import."""
        names = set()
        for name in modules:
            scopes = self.cli_scopes(command) if name == CLI else None
            for scope, targets in self.modules[name].external.items():
                if scopes is None or scope in scopes:
                    names |= targets
        return names

    def digest(self, modules: Iterable[str], commands: Iterable[str] | None = None) -> str:
        """Hash of the code of ``modules``: each module's syntax tree without docstrings
        (comments, docstrings and layout do not count); of the CLI module, only the parts
        that ``commands`` run (all of it if None)."""
        scopes = None if commands is None else set().union(*(self.cli_scopes(c) for c in commands))
        h = hashlib.sha256()
        for name in sorted(modules):
            h.update(name.encode() + b"\0")
            h.update(_code_text(self.modules[name].path, scopes if name == CLI else None).encode() + b"\0")
        return h.hexdigest()[:16]


def _code_text(path: Path, scopes: set[str | None] | None = None) -> str:
    """The module's code as text: its syntax tree without docstrings (no line numbers);
    given ``scopes``, without the top-level functions and classes not named there."""
    tree = _without_docstrings(ast.parse(path.read_bytes(), filename=str(path)))
    if scopes is not None:
        definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        top = {node.name: node for node in tree.body if isinstance(node, definitions)}
        # the scopes, and what the module's top-level statements use
        kept = {name for name in scopes if name is not None}
        stack = [name for node in tree.body if not isinstance(node, definitions) for name in _names(node)]
        while stack:
            name = stack.pop()
            if name in top and name not in kept:
                kept.add(name)
                stack += _names(top[name])
        tree.body = [node for node in tree.body if not isinstance(node, definitions) or node.name in kept]
    return ast.dump(tree)


def _is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names


def build_graph(root: str | Path = PACKAGE) -> Graph:
    """Parse every module of the package directory ``root``."""
    root = Path(root).resolve()
    graph = Graph(root, {})
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name, is_package = _module_name(path, root)
        tree = ast.parse(path.read_bytes(), filename=str(path))
        graph.modules[name] = Module(
            name,
            path,
            is_package,
            task_names=_task_names(tree) if name.startswith(TASKS + ".") else set(),
            references=_references(tree),
        )
    for module in graph.modules.values():
        tree = ast.parse(module.path.read_bytes(), filename=str(module.path))
        for scope, node in _imports(tree):
            internal, external = graph.resolve(module, node)
            module.internal.setdefault(scope, set()).update(internal - {module.name})
            module.external.setdefault(scope, set()).update(external)
        if module.name.startswith(REGISTRY + "."):
            # its entries name classes as "bnre.package.module:Class", which the package
            # that holds the module imports by name (bnre.methods builds METHODS from them)
            for target in {graph._existing(t) for t in _registry_targets(tree)}:
                parent = graph.modules[target.rsplit(".", 1)[0]] if "." in target else None
                if parent is not None and not parent.name.startswith(REGISTRY):
                    parent.internal.setdefault(None, set()).add(target)
    return graph


def _registry_targets(tree: ast.Module) -> set[str]:
    """The modules that the registry's ``"bnre.module:Class"`` strings name."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            module, colon, name = node.value.partition(":")
            if colon and name.isidentifier() and module.split(".")[0] == NAME and all(p.isidentifier() for p in module.split(".")):
                names.add(module)
    return names


@lru_cache(maxsize=None)
def _cached_graph(root: str) -> Graph:
    return build_graph(root)


def code_hash(commands: Iterable[str], task: str | None = None, root: str | Path = PACKAGE) -> str:
    """Hash of the code (:meth:`Graph.digest`) of every package module the ``commands``
    run for ``task``, and of the part of the CLI they run."""
    commands = list(commands)
    graph = _cached_graph(str(Path(root).resolve()))
    modules = set().union(*(graph.command_modules(c, task) for c in commands))
    return graph.digest(modules, commands)


#: Methods of a task class that training and evaluation run but the simulator does not.
NETWORK_METHODS = ("embedding", "embedding_features", "preprocess")

#: The commands that run a task's prior, simulator or likelihood but no network.
NETWORKLESS_COMMANDS = ("simulate", "merge", "evaluate-exact")


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _simulation_part(tree: ast.Module, class_name: str) -> ast.Module:
    """The module without the class's network methods and the top-level functions and
    classes that only those use."""
    top = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    target = top.get(class_name)
    if not isinstance(target, ast.ClassDef):
        return tree
    network = [n for n in target.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in NETWORK_METHODS]
    pruned = ast.ClassDef(**{**{f: getattr(target, f) for f in target._fields}, "body": [n for n in target.body if n not in network]})
    roots = [pruned] + [n for n in tree.body if n.__class__ not in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)]
    kept, stack = set(), [name for root in roots for name in _names(root)]
    while stack:
        name = stack.pop()
        if name in top and name not in kept and name != class_name:
            kept.add(name)
            stack += _names(top[name])
    only_network = {name for method in network for name in _names(method)} - kept
    body = [pruned if n is target else n for n in tree.body if getattr(n, "name", None) not in only_network]
    return ast.Module(body=body, type_ignores=[])


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])
    return tree


def plugin_code_hash(path: str | Path, class_name: str, commands: Iterable[str]) -> str:
    """Hash of a plugin task's code as far as ``commands`` run it.

    The file's syntax tree is hashed (comments, docstrings and formatting do not count), with the
    sibling modules it imports. The :data:`NETWORKLESS_COMMANDS` do not run the class's
    :data:`NETWORK_METHODS` nor what only they use, so that editing an embedding
    re-trains without re-simulating (nor re-evaluating the exact posterior).
    """
    path = Path(path)
    tree = _without_docstrings(ast.parse(path.read_bytes(), filename=str(path)))
    if set(commands) <= set(NETWORKLESS_COMMANDS):
        tree = _simulation_part(tree, class_name)
    h = hashlib.sha256(ast.dump(tree).encode())
    siblings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            siblings |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            siblings.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            siblings |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
    for name in sorted(siblings):
        for sibling in (path.parent / f"{name}.py", path.parent / name / "__init__.py"):
            if sibling.is_file() and sibling != path:
                h.update(name.encode() + b"\0" + sibling.read_bytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    """Print, per command (and task), the modules and third-party imports it runs."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--task")
    args = p.parse_args(argv)
    graph = build_graph()
    for command in graph.commands():
        modules = graph.command_modules(command, args.task)
        print(f"{command}: {graph.digest(modules, [command])}")
        print(f"  modules: {', '.join(sorted(modules))}")
        print(f"  imports: {', '.join(sorted(graph.third_party(modules, command)))}")


if __name__ == "__main__":
    main()
