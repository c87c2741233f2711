"""The package's layers import each other one way: no cycle between its packages.

Read from the source (every import counts, lazy and TYPE_CHECKING ones too), so that a
cycle is caught where it is written, not when an import order happens to break it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import numerai_autopilot

ROOT = Path(numerai_autopilot.__file__).parent
PACKAGE = "numerai_autopilot"


def _part(dotted: str) -> str | None:
    """The top-level package or module of ours that `dotted` names (None: not ours)."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


def _imports(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == PACKAGE:  # from numerai_autopilot import executor
                names.update(f"{PACKAGE}.{alias.name}" for alias in node.names)
    return names


def package_graph() -> dict[str, set[str]]:
    """Each top-level package or module of ours -> the others it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source in ROOT.rglob("*.py"):
        rel = source.relative_to(ROOT).with_suffix("").parts
        here = rel[0]
        for name in _imports(source):
            there = _part(name)
            if there is not None and there != here:
                graph[here].add(there)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_package_imports_one_that_imports_it_back() -> None:
    graph = package_graph()
    assert {"executor", "runs", "web", "ledger"} <= set(graph)  # the source was read
    cycle = _cycle(graph)
    assert cycle is None, "packages import each other in a cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_where_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
