"""The shape of the code: no import circles, routers never import routers, `core` no domain.

Imports are read with `ast` from every module under `backend/` and `indexer/`, wherever they
stand in a module (function-level and `TYPE_CHECKING` imports count too: a circle hidden in a
function is still a circle). Packages are `backend.<name>` (a top-level module such as
`backend.app` is its own node) and `indexer`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("backend", "indexer")
# Composition roots: they wire every domain together and nothing imports them back.
ROOTS = {
    "backend.app",
    "backend.cli",
    "backend.models",
    "backend.devstack",
    "backend.prodlocal",  # the production shape on one machine, built on the dev stack
    "backend.devtools",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


@cache
def module_graph() -> dict[str, frozenset[str]]:
    """Module -> the project modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, frozenset[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in modules:
                        targets.add(full)
                    elif node.module in modules:
                        targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in modules)
        targets.discard(name)
        graph[name] = frozenset(targets)
    return graph


def package_of(module: str) -> str:
    """`backend.orders.service` -> `backend.orders`; `indexer.engine` -> `indexer`."""
    parts = module.split(".")
    return parts[0] if parts[0] == "indexer" else ".".join(parts[:2])


def package_graph() -> dict[str, set[str]]:
    """Package -> the other packages its modules import."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in module_graph().items():
        graph[package_of(module)].update(package_of(t) for t in targets)
    for package, targets in graph.items():
        targets.discard(package)
    return graph


def circles(graph: dict[str, set[str]] | dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(iter(children), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others() -> None:
    assert circles(module_graph()) == []


def test_domain_packages_form_layers() -> None:
    assert circles(package_graph()) == []


def test_core_imports_no_domain() -> None:
    offending = {
        module: sorted(t for t in targets if package_of(t) != "backend.core")
        for module, targets in module_graph().items()
        if package_of(module) == "backend.core"
    }
    assert {m: t for m, t in offending.items() if t} == {}


def test_routers_never_import_routers() -> None:
    offending = {
        module: sorted(t for t in targets if t.endswith(".router"))
        for module, targets in module_graph().items()
        if module.endswith(".router")
    }
    assert {m: t for m, t in offending.items() if t} == {}


def test_nothing_imports_a_composition_root() -> None:
    offending = {
        module: sorted(t for t in targets if package_of(t) in ROOTS and t != module)
        for module, targets in module_graph().items()
        if package_of(module) not in ROOTS
    }
    assert {m: t for m, t in offending.items() if t} == {}
