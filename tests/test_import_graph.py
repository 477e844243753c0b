"""The Python package's modules import each other without a cycle (issue 19).

Every ``import`` statement counts, wherever it is: at module level, inside a function or a
class, under ``if TYPE_CHECKING``. A function-level import hides a cycle from Python's import
machinery, not from a reader: both ends then depend on each other. The graph is read from the
source with ``ast``, so nothing is imported here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "pickleguard"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _extensions() -> Set[str]:
    """Compiled submodules (``_native``, known by its stub): imported, importing nothing."""
    return {_module_name(p) for p in PACKAGE.rglob("*.pyi")
            if not p.with_suffix(".py").exists()}


def _resolve(current: str, is_package: bool, level: int, module: Optional[str]) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``current``."""
    if level == 0:
        return module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def import_graph(modules: Dict[str, Path]) -> Dict[str, Set[str]]:
    """module -> the package modules it imports (``from p import n`` counts as importing the
    module ``p.n`` when there is one, else ``p`` itself)."""
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    known = set(modules) | _extensions()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in known else base)
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(m: str) -> Optional[List[str]]:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_graph_sees_function_level_and_relative_imports():
    # The reader itself: a cycle through a function-level import, and `from . import x`
    # of a submodule versus a name of the package.
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(g) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert _resolve("pickleguard.integrations.numpy", False, 2, "_io") == "pickleguard._io"
    assert _resolve("pickleguard", True, 1, None) == "pickleguard"
    assert _resolve("pickleguard.integrations", True, 1, "_common") == \
        "pickleguard.integrations._common"
    mods = _modules()
    graph = import_graph(mods)
    assert "pickleguard._guard" in graph["pickleguard"]
    assert "pickleguard" not in graph["pickleguard._analysis"]  # `from . import _native`
    assert "pickleguard.integrations.pytorch" in mods


def test_no_import_cycle_in_the_package():
    graph = import_graph(_modules())
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
