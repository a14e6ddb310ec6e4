"""DESIGN.md's layers: imports only go downward; `import anomalia` is light; the public names exist."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import anomalia as an

SRC = Path(an.__file__).parent
BELOW = {
    "_core": set(),
    "data": {"_core"},
    "nn": {"_core"},
    "scoring": {"_core"},
    "metrics": {"_core"},
    "detectors": {"_core", "data", "nn", "scoring", "metrics"},
    "explain": {"_core", "data", "nn", "scoring", "metrics", "detectors"},
    "bundle": {"_core", "data", "nn", "scoring", "metrics", "detectors"},
    "workflows": {"_core", "data", "nn", "scoring", "metrics", "detectors", "explain", "bundle"},
    "report": {"_core", "data", "scoring", "metrics", "workflows", "explain"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    """anomalia layers imported at module level (function-level lazy imports are deliberate exceptions)."""
    tree = ast.parse(path.read_text())
    pkg_depth = len(path.relative_to(SRC).parts) - 1
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level <= pkg_depth:
                    continue  # inside the same layer
                target = (node.module or "").split(".")[0] or None
                names = [target] if target else [a.name for a in node.names]
                out.update(names)
            elif node.module and node.module.startswith("anomalia."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("anomalia."))
    return out


def test_imports_only_go_downward() -> None:
    bad = []
    for f in SRC.rglob("*.py"):
        layer = _layer(f)
        if layer in ("__init__", "cli") or layer not in BELOW:
            continue
        for target in _imported_layers(f) - BELOW[layer] - {layer}:
            if target in BELOW or target == "cli":
                bad.append(f"{f.relative_to(SRC)} imports {target}")
    assert not bad, bad


def test_import_is_light() -> None:
    # scikit-learn's metrics and estimators and scipy.signal are imported where used: together they added
    # 0.3 to 0.6 s to the start of every command
    heavy = "('matplotlib', 'jinja2', 'typer', 'fastapi', 'sklearn.metrics', 'sklearn.ensemble', 'scipy.signal')"
    code = f"import anomalia, sys; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_public_names_exist() -> None:
    for name in an.__all__:
        assert hasattr(an, name), name
