"""The package's layers: each sub-package imports only what its docstring's ``Imports:``
line names, and no module imports itself back through others.

Every ``import`` statement counts, at module level or inside a function, except those
under ``if TYPE_CHECKING:`` (annotations only). Top-level modules other than the command
line (``io``, ``options``, ``provenance``, ``devices``, ``sampling``) are shared by every stage and
import only one another.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bnre"
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
ENTRY = {"bnre.cli", "bnre.__main__"}  # the command line may import every stage


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def layer(module: str) -> str:
    """A module's layer: its sub-package, or "shared" for the package's own modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else "shared"


def allowed_layers(subpackage: str) -> set[str]:
    """The layers a sub-package's docstring allows it to import (besides its own)."""
    doc = ast.get_docstring(ast.parse((PACKAGE / subpackage / "__init__.py").read_text())) or ""
    lines = [line for line in doc.splitlines() if line.startswith("Imports:")]
    assert len(lines) == 1, f"bnre.{subpackage}'s docstring needs one line 'Imports: ...'"
    line = lines[0].removeprefix("Imports:").strip().rstrip(".")
    if line == "nothing of bnre":
        return set()
    names = set()
    for item in (s.strip() for s in line.split(",")):
        if item == "bnre (shared modules only)":
            names.add("shared")
        else:
            assert re.fullmatch(r"bnre\.\w+", item) and item[5:] in SUBPACKAGES, f"bnre.{subpackage}: {item!r}"
            names.add(item[5:])
    return names


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    return skipped


def imports(module: str) -> set[str]:
    """The package modules that ``module`` imports (a ``from package import name`` counts
    ``package.name`` if that is a module, else the package)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "bnre"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] != "bnre":
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    unknown = {m for m in found if m not in MODULES}
    assert not unknown, f"{module} imports modules that do not exist: {sorted(unknown)}"
    return found


@pytest.mark.parametrize("module", sorted(set(MODULES) - ENTRY))
def test_each_module_imports_only_the_layers_its_package_allows(module):
    own = layer(module)
    allowed = {own} | (allowed_layers(own) if own != "shared" else set())
    wrong = sorted(m for m in imports(module) if layer(m) not in allowed)
    assert not wrong, f"{module} (layer {own}) may import {sorted(allowed)}, but imports {wrong}"


def test_every_subpackage_states_its_imports():
    assert set(SUBPACKAGES) >= {"registry", "nets", "tasks", "simulation", "methods", "training",
                                "evaluation", "results", "workflow"}
    for subpackage in SUBPACKAGES:
        allowed_layers(subpackage)


def test_evaluation_and_results_never_import_training():
    for module in MODULES:
        if layer(module) in {"evaluation", "results"}:
            assert not {m for m in imports(module) if layer(m) == "training"}, module


def test_no_module_imports_itself_back():
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
