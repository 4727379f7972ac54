"""The package's import structure: the CLI is a leaf (only vpt/__main__.py imports it) and vpt's
modules import each other without cycles.

Read statically with ast, so the test needs none of the heavy dependencies. Every import
statement counts, at module level or inside a function: a function-level import only defers the
cycle to the first call, it does not remove it. An import of `vpt.a.b` is an edge to `vpt.a.b`
(the module that defines the names); `from vpt.a import b` is an edge to the submodule `vpt.a.b`
when there is one, else to the package `vpt.a`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vpt"
CLI = "vpt.cli"
MAY_IMPORT_CLI = {"vpt.cli", "vpt.__main__"}  # the entry points


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _target(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of vpt's modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in known:
            return ".".join(parts[:i])
    return None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """vpt-internal modules `module` imports, each with the line of its first import."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ..a import b
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            target = _target(name, known)
            if target is not None and target != module:
                found.setdefault(target, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    return "\n".join(f"  {a} -> {b}  ({modules()[a].relative_to(PACKAGE.parent)}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:]))


def test_the_graph_sees_module_and_function_level_imports() -> None:
    graph = import_graph()
    assert "vpt.errors" in graph["vpt.grid"]  # module level
    assert "vpt.data.tokenizer" in graph["vpt.runs"]  # inside train_setup
    assert "vpt.paths" in graph["vpt.workflow"]  # `from vpt import paths`: the submodule
    assert "vpt.cli" in graph["vpt.__main__"]


def test_find_cycle_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1, "b": 1}}) is None


def test_only_the_entry_points_import_the_cli() -> None:
    graph = import_graph()
    offenders = [f"{m} ({modules()[m].relative_to(PACKAGE.parent)}:{deps[CLI]})"
                 for m, deps in graph.items() if CLI in deps and m not in MAY_IMPORT_CLI]
    assert not offenders, f"library modules import {CLI} (move what they need into a library module): {', '.join(offenders)}"


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in vpt:\n" + describe(cycle, graph)
