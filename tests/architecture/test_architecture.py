"""The package's shape: no import circles, a torch-free runtime, modules a newcomer can read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import melascan

PACKAGE = Path(melascan.__file__).parent
MAX_MODULE_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the melascan modules it imports (at the top or inside functions)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path that returns to its start), or None. Package
    ``__init__`` modules are skipped as targets: importing ``a.b`` runs ``a`` first anyway."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if (PACKAGE.parent / dep.replace(".", "/") / "__init__.py").is_file():
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circle_among_modules():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"melascan.a": {"melascan.b"}, "melascan.b": {"melascan.a"}}) == [
        "melascan.a", "melascan.b", "melascan.a"]


def test_runtime_imports_neither_training_nor_evaluation():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("melascan.inference"):
            bad = {d for d in deps if d.startswith(("melascan.training", "melascan.evaluation", "melascan.export"))}
            assert not bad, f"{name} imports {bad}"


def test_importing_the_runtime_and_the_web_app_loads_no_torch():
    code = ("import sys, melascan.inference, melascan.inference.predict, melascan.web.app; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'melascan.training', "
            "'melascan.evaluation', 'melascan.export'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_module_is_too_long_to_read():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
