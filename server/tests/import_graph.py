#!/usr/bin/env python3
"""Print the import graph of the headrace package and exit 1 if it has a cycle.

Built from the source with ``ast`` (nothing is imported), counting every import: at the
top, inside functions and under ``TYPE_CHECKING`` alike, since each of them ties one
module to another.  ``cd server && python tests/import_graph.py``
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "headrace"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the package modules it imports (``headrace`` itself is ``__init__``)."""
    modules = {path.stem for path in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from . import x / from .x import y
                    base = node.module or ""
                    names = [f"headrace.{base}" if base else f"headrace.{a.name}" for a in node.names]
                elif node.module == "headrace":
                    names = [f"headrace.{a.name}" for a in node.names]
                elif node.module:
                    names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] != "headrace":
                    continue
                target = parts[1] if len(parts) > 1 and parts[1] in modules else "__init__"
                if target != path.stem:
                    targets.add(target)
        graph[path.stem] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def main() -> int:
    graph = import_graph()
    for module in sorted(graph):
        print(f"{module:12s} -> {', '.join(sorted(graph[module])) or '-'}")
    cycle = find_cycle(graph)
    if cycle:
        print("import cycle: " + " -> ".join(cycle))
        return 1
    print("no import cycle")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
