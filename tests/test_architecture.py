"""Which way imports point, read from the source: the layers of the package stay layers.

cli -> train / finetune / eval / cluster -> engine and methods -> data / models / ops / losses ->
shards / video, with ``wtpipe.config`` and ``wtpipe.atomic`` under everything. Imports inside functions count
too (they are arrows a reader follows), except under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "wtpipe")
LOW = ("ops", "losses", "models", "data", "shards", "video")
HIGH = ("train", "finetune", "methods", "eval", "cli", "cluster", "demo")
FORBIDDEN = {
    **{low: HIGH for low in LOW},
    "methods": ("train", "finetune", "eval", "cli", "cluster", "demo"),
    "finetune": ("train", "methods", "cli", "cluster", "demo"),
    "eval": ("train", "methods", "finetune", "cli", "cluster", "demo"),
    "engine": ("train", "finetune", "methods", "eval", "cli", "cluster", "demo"),
    "cluster": ("cli",),
}


def modules() -> dict[str, ast.Module]:
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                with open(path, encoding="utf-8") as handle:
                    found[module.removesuffix(".__init__")] = ast.parse(handle.read())
    return found


def imports(tree: ast.Module) -> set[str]:
    """The wtpipe modules a module imports, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wtpipe"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("wtpipe")}
    return found


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


MODULES = modules()


@pytest.mark.parametrize("low", sorted(FORBIDDEN))
def test_imports_point_down(low):
    wrong = sorted(
        f"{module} -> {target}"
        for module, tree in MODULES.items()
        if layer(module) == low
        for target in imports(tree)
        if layer(target) in FORBIDDEN[low]
    )
    assert wrong == []


def test_atomic_writes_live_in_one_place():
    """Renaming a finished file into place is ``wtpipe.atomic``'s job (and the engine's, for
    checkpoint folders through it): no other module calls ``os.replace``/``os.rename``."""
    found = sorted(
        module
        for module, tree in MODULES.items()
        if module != "wtpipe.atomic"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("replace", "rename")
        and getattr(node.value, "id", "") == "os"
    )
    assert found == []


def test_no_import_cycle_between_modules():
    graph = {
        module: {t for t in imports(tree) if t in MODULES and t != module}
        for module, tree in MODULES.items()
    }
    for package in [
        m for m in MODULES if f"{m}.__init__" not in MODULES
    ]:  # a package imports nothing by being a parent
        graph.setdefault(package, set())
    seen, stack, cycles = {}, [], []

    def visit(module: str) -> None:
        seen[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if seen.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in seen:
                visit(target)
        stack.pop()
        seen[module] = "done"

    for module in sorted(graph):
        if module not in seen:
            visit(module)
    assert cycles == []
