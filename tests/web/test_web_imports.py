"""The web package's shape: no import cycle among its modules (counting imports inside
functions too), no module over 450 lines, and serving imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import melascan.web

WEB = Path(melascan.web.__file__).resolve().parent
PACKAGE = "melascan.web"


def _modules() -> dict[str, Path]:
    return {f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE: p for p in WEB.glob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``melascan.web`` modules it imports anywhere in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from melascan.web import db`` imports the module melascan.web.db
                targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                               for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_web_modules():
    graph = import_graph()
    assert graph[f"{PACKAGE}.app"], "the graph must see the app's imports"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_web_module_over_450_lines():
    long = {p.name: n for p in WEB.glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, long


def test_serving_imports_no_torch():
    code = ("import sys; from melascan.web import create_app; import melascan.web.analysis, melascan.web.api; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
