"""The import graph of the package has no cycle — counting imports inside functions and under
``TYPE_CHECKING`` too, so that no cycle hides behind a deferred import."""

from __future__ import annotations

import ast
from pathlib import Path

import distdream

PACKAGE = Path(distdream.__file__).parent


def module_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a package's own parents left out: Python
    imports those first anyway, and ``from .. import storage`` names the module, not the package)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, node.module] if node.module else base)
                named = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                targets = named or [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_imports_without_a_cycle() -> None:
    graph = module_graph()
    assert len(graph) > 50 and "distdream.video.record" in graph["distdream.video.index"]  # the graph is read
    assert cycles(graph) == []


def test_the_check_sees_a_cycle_behind_a_deferred_import() -> None:
    graph = module_graph()
    graph["distdream.video.record"].add("distdream.video.index")  # as a function-level import would
    assert any({"distdream.video.index", "distdream.video.record"} <= set(c) for c in cycles(graph))
