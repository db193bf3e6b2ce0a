"""The package's shape: no import cycle among dpe_hf's modules and no module over 600 lines.

Every import statement counts: at module level, inside functions (lazy) and under
`TYPE_CHECKING`, relative ones resolved, and `importlib.import_module("dpe_hf...")` with a
literal name. An import of `pkg.mod` is an edge to `pkg.mod` alone (not to the packages
above it, which Python runs first but which would put every module on a cycle through
`dpe_hf/__init__.py`); `from pkg import name` is an edge to `pkg.name` when that is a module,
else to `pkg`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

PACKAGE = "dpe_hf"
MAX_LINES = 600


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package under `root`."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _within(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of dotted `name` that is a known module (None: outside the package)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _import_module_literal(node: ast.Call) -> str | None:
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
        value = node.args[0].value
        return value if isinstance(value, str) else None
    return None


def imports_of(name: str, known: dict[str, Path]) -> set[str]:
    """The package's modules that module `name` imports, by any import statement in it."""
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in known else base)
        elif isinstance(node, ast.Call):
            literal = _import_module_literal(node)
            targets = [literal] if literal else []
        for target in targets:
            module = _within(target, known)
            if module is not None and module != name:
                found.add(module)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    known = module_names(root, package)
    return {name: imports_of(name, known) for name in known}


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (each module in one is on a
    cycle with every other), found with Tarjan's algorithm, iteratively."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
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
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that comes back to its start) per tangle."""
    return [_cycle_in(graph, component) for component in tangles(graph)]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself (breadth first)."""
    start = min(component)
    previous = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in its component")  # Tarjan said there is one


def test_the_import_collector_sees_every_kind_of_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg.a import thing\n",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\nthing = 1\n",
        "b.py": "def later():\n    from .sub import c\n    return c\n",
        "sub/__init__.py": "",
        "sub/c.py": "import os\nimport pkg.sub.d\nfrom .. import e\nfrom ..a import thing\n",
        "sub/d.py": "import importlib\nimportlib.import_module('pkg.a')\n",
        "e.py": "from . import sub\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},  # under TYPE_CHECKING, `from pkg import b` (a module)
        "pkg.b": {"pkg.sub.c"},  # lazy and relative
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.sub.d", "pkg.e", "pkg.a"},  # os is outside; `from .. import e`
        "pkg.sub.d": {"pkg.a"},  # importlib with a literal name
        "pkg.e": {"pkg.sub"},
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    assert tangles(graph) == [{"pkg.a", "pkg.b", "pkg.sub.c", "pkg.sub.d"}]
    assert cycles({"x": {"y"}, "y": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph(REPO, PACKAGE)
    assert len(graph) > 40 and graph["dpe_hf.training.loop"]  # the walk found the package
    found = tangles(graph)
    assert not found, "import cycles (one path each, then every module on a cycle with it):\n" + "\n".join(
        f"{' -> '.join(_cycle_in(graph, tangle))}  [{', '.join(sorted(tangle))}]" for tangle in found)


def test_no_module_is_over_600_lines():
    files = [*module_names(REPO, PACKAGE).values(), REPO / "app.py"]
    lines = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in files}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
