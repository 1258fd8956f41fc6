"""Figures of the import structure: module-level import cycles and function-level imports.

    .venv/bin/python scripts/import_report.py [CHECKOUT]

Reads every import of the app packages (function-level ones included) with grimp, the graph
lint-imports uses, and prints the cycles between modules (Tarjan's strongly connected components)
and how many imports sit inside functions (all, and of the project's own modules). Migrations are
left out. CHECKOUT defaults to the current directory, so an older commit can be measured from a
worktree of it.
"""

from __future__ import annotations

import ast
import os
import sys

import grimp

PACKAGES = ("governance", "accounts", "audit", "workflows")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def function_level_imports() -> tuple[int, int]:
    every = own = 0
    for package in PACKAGES:
        for folder, _, files in os.walk(package):
            if "migrations" in folder:
                continue
            for name in files:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(folder, name)) as handle:
                    tree = ast.parse(handle.read())
                top = {id(node) for node in tree.body}
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                        every += 1
                        module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                        own += bool(module) and module.split(".")[0] in PACKAGES
    return every, own


def main() -> None:
    os.chdir(sys.argv[1] if len(sys.argv) > 1 else ".")
    sys.path.insert(0, os.getcwd())
    sys.setrecursionlimit(10_000)
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    modules = [m for m in graph.modules if ".migrations" not in m]
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if ".migrations" not in i} for m in modules
    }
    found = cycles(edges)
    print(f"module-level import cycles: {len(found)} ({sum(map(len, found))} modules)")
    for component in found:
        print("  " + " <-> ".join(component))
    every, own = function_level_imports()
    print(f"function-level imports: {every} (of the project's own modules: {own})")


if __name__ == "__main__":
    main()
