"""DESIGN.md's layers: imports only go downward (function-level imports and the command line included), the
module graph has no cycle, `import anomalia` is lazy and light, and `__all__` is exactly the public names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import anomalia as an

SRC = Path(an.__file__).parent

#: Each layer and the layers it may import, as DESIGN.md's table says (the rows above it, or fewer).
MAY_IMPORT: dict[str, set[str]] = {
    "_core": set(),
    "data": {"_core"},
    "nn": {"_core"},
    "scoring": {"_core"},
    "metrics": {"_core"},
    "results": set(),
    "bundle": {"_core"},
    "detectors": {"_core", "data", "nn", "scoring", "metrics", "results", "bundle"},
    "explain": {"_core", "data", "nn", "scoring", "metrics", "results", "bundle", "detectors"},
    "model": {"_core", "data", "nn", "scoring", "metrics", "results", "bundle", "detectors", "explain"},
    "report": {"_core", "results", "metrics"},
    "respond": {"_core", "results"},
}
MAY_IMPORT["export"] = MAY_IMPORT["model"] | {"model"}
MAY_IMPORT["workflows"] = MAY_IMPORT["model"] | {"model", "export"}
MAY_IMPORT["stream"] = MAY_IMPORT["model"] | {"model", "respond"}
MAY_IMPORT["serve"] = MAY_IMPORT["workflows"] | {"workflows", "respond"}
MAY_IMPORT["scale"] = MAY_IMPORT["workflows"] | {"workflows"}
MAY_IMPORT["cli"] = {layer for layer in MAY_IMPORT if layer != "cli"}
MAY_IMPORT["__main__"] = {"cli"}  # `python -m anomalia`


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(path: Path) -> set[str]:
    """Every anomalia module ``path`` imports, at module level or inside functions (not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("anomalia"):
                continue
            for alias in node.names:  # `from . import bundle` names a module
                sub = f"{target}.{alias.name}"
                out.add(sub if (SRC.parent / sub.replace(".", "/")).with_suffix(".py").exists() else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("anomalia"))
    return out


def graph() -> dict[str, set[str]]:
    return {_module(f): imports(f) - {_module(f)} for f in SRC.rglob("*.py")}


def test_imports_only_go_downward() -> None:
    bad = []
    for module, targets in graph().items():
        layer = _layer(module)
        if layer == "__init__":
            continue
        allowed = MAY_IMPORT.get(layer)
        assert allowed is not None, f"{module} is in no layer of DESIGN.md's table; add it to MAY_IMPORT"
        for target in targets:
            other = _layer(target)
            if other != layer and other not in allowed:
                bad.append(f"{module} imports {target}")
    assert not bad, bad


def test_the_layer_table_has_no_cycle() -> None:
    order: list[str] = []
    pending = dict(MAY_IMPORT)
    while pending:
        ready = [layer for layer, deps in pending.items() if deps <= set(order)]
        assert ready, f"the layers {sorted(pending)} import each other"
        order += ready
        for layer in ready:
            del pending[layer]


def test_the_module_graph_has_no_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*path, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(g):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, " -> ".join(cycle)


def _loaded(code: str, modules: tuple[str, ...]) -> str:
    probe = f"{code}; import sys; print(','.join(m for m in {modules!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_lazy_and_light() -> None:
    # scikit-learn's metrics and estimators and scipy.signal are imported where used: together they added
    # 0.3 to 0.6 s to the start of every command
    heavy = ("torch", "matplotlib", "jinja2", "typer", "sklearn.metrics", "sklearn.ensemble", "scipy.signal")
    assert _loaded("import anomalia", heavy) == ""
    assert _loaded("import anomalia.scoring, anomalia.metrics, anomalia.results", ("torch",)) == ""
    assert _loaded("import anomalia as an; an.AutoEncoder", ("torch",)) == "torch"


def test_all_is_exactly_the_public_names() -> None:
    # the names `anomalia` provides lazily (_NAMES and its subpackages) are the names it declares for type
    # checkers (the TYPE_CHECKING imports) and exactly __all__; each of them resolves
    tree = ast.parse((SRC / "__init__.py").read_text())
    declared = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in node.body
        if isinstance(inner, ast.ImportFrom)
        for alias in inner.names
    }
    assert declared == set(an.__all__) == set(an._NAMES) | {"explain", "metrics", "scoring"}
    for name in an.__all__:
        assert getattr(an, name) is not None, name
