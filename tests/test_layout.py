"""The layout holds: imports go down only (space <- models <- search <- reports <- studies), no module
imports another in a circle, and Optuna's internals are touched in search/lifecycle.py alone.

Imports are read from the source (module level and inside functions), not from what happens to be
loaded, so an import hidden in a function to dodge a cycle is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("space", "models", "search", "reports", "studies")
LIFECYCLE = "search.lifecycle"


def modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def local(module: str) -> str:
    """A first-party module by its folder's name: effnas.search.trial is search/trial.py."""
    return module.removeprefix("effnas.")


def imports_of(name: str, path: Path) -> set[str]:
    """The first-party modules ``name`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [local(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = local(node.module or "")
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                    else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def layer(name: str) -> int:
    return LAYERS.index(name.split(".")[0])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_only(name):
    upward = sorted(t for t in GRAPH[name] if layer(t) > layer(name))
    assert not upward, f"{name} imports {upward}: against the layering {' <- '.join(LAYERS)}"


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert not cycles, f"import cycles: {cycles}"


def test_the_layout_test_sees_imports_inside_functions():
    assert "search.worker" in GRAPH["studies.runner"]  # imported inside preflight
    assert layer("studies.cli") > layer("space.errors")


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != LIFECYCLE))
def test_only_lifecycle_touches_private_attributes(name):
    """A private attribute of another object (``study._storage``, ``trial._trial_id``) is an Optuna (or
    torch) internal: search/lifecycle.py is the one place allowed to reach for one."""
    tree = ast.parse(MODULES[name].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("optuna", "torch", "ray"):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("_")]
    assert not found, f"{name} reaches into private attributes: {found}"


def test_lifecycle_is_where_the_internals_are():
    source = MODULES[LIFECYCLE].read_text()
    assert "._storage" in source and "._trial_id" in source


def external_imports(path: Path) -> set[str]:
    """The top-level names of the third-party packages ``path`` imports anywhere in its source."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


ENGINE = sorted(n for n in MODULES if n.startswith("search.")
                and n.split(".")[1] not in ("data", "training", "utils", "worker"))
PIPELINE = sorted(n for n in MODULES if n.split(".")[:2] in (["search", "data"], ["search", "training"]))


@pytest.mark.parametrize("name", PIPELINE)
def test_the_data_pipeline_and_the_training_engine_never_import_optuna(name):
    assert "optuna" not in external_imports(MODULES[name]), f"{name} imports optuna"


@pytest.mark.parametrize("name", ENGINE)
def test_the_trial_engine_never_imports_torch_but_in_the_worker(name):
    assert "torch" not in external_imports(MODULES[name]), f"{name} imports torch"


def test_the_seam_tests_see_the_packages():
    assert "search.trial" in ENGINE and "search.executors.local" in ENGINE and "search.worker" not in ENGINE
    assert "search.data.kinds" in PIPELINE and "search.training.loop" in PIPELINE
    assert "torch" in external_imports(MODULES["search.worker"])
