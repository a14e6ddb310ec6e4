"""Model versions beside a model folder: every adaptation writes a new version, none is ever changed.

Layout, for a model folder ``MODEL/``::

    MODEL/                  the version being served: an ordinary model folder, so every reader
                            (`anomalia score`, the service, the watcher) sees the promoted version
    MODEL.versions/
        CURRENT             the pointer (JSON): {"current": V, "history": [V0, V1, ...], "rolled_back": [...],
                            "candidates": {V: {"promoted": bool, "gate": {...}}}}
        V0/  V1/  ...       one model folder per version (its manifest's ``version``), written once

The first adaptation archives the folder's own version as ``MODEL.versions/V0``. A candidate is written
to ``MODEL.versions/V`` (:func:`write_candidate`); promoting it (:func:`promote`) copies it to a hidden
sibling of ``MODEL/`` and swaps the two folders (two renames: a reader sees the old or the new version,
never a mix), then rewrites ``CURRENT`` atomically (write + rename). :func:`rollback` promotes the version
before the current one in ``history`` again. A watcher with ``follow_versions`` notices ``CURRENT``
changing and reloads ``MODEL/``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from .. import bundle
from .._core import BundleError, InputError

POINTER = "CURRENT"


def versions_dir(model: str | Path) -> Path:
    """``MODEL.versions`` beside ``MODEL``."""
    folder = Path(model).resolve()
    return folder.parent / f"{folder.name}.versions"


def current_version_path(model: str | Path) -> Path:
    return versions_dir(model) / POINTER


def read_pointer(model: str | Path) -> dict[str, Any]:
    """The pointer file (an empty history when the model was never adapted)."""
    path = current_version_path(model)
    if not path.is_file():
        version = str(bundle.read_manifest(model).get("version", ""))
        return {"current": version, "history": [version], "rolled_back": [], "candidates": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} is damaged ({exc}); restore it from the folders in {path.parent}") from None
    if not isinstance(data, dict) or "current" not in data or not isinstance(data.get("history"), list):
        raise BundleError(f"{path} is not a version pointer (needs 'current' and 'history')")
    data.setdefault("rolled_back", [])
    data.setdefault("candidates", {})
    return data


def _write_pointer(model: str | Path, data: dict[str, Any]) -> None:
    path = current_version_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{POINTER}.{uuid.uuid4().hex[:8]}")
    with tmp.open("w") as f:
        f.write(json.dumps(data, indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def archive(model: str | Path) -> str:
    """Keep the version in ``MODEL/`` as ``MODEL.versions/<version>`` (once); returns its version."""
    folder = Path(model)
    version = str(bundle.read_manifest(folder).get("version", ""))
    if not version:
        raise BundleError(f"{folder} has no version in its manifest; save it again with this anomalia")
    target = versions_dir(folder) / version
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{version}.partial-{uuid.uuid4().hex[:8]}"
        shutil.copytree(folder, tmp)
        os.rename(tmp, target)
    if not current_version_path(folder).is_file():
        _write_pointer(folder, read_pointer(folder))
    return version


def write_candidate(model_obj: Any, model: str | Path) -> str:
    """Save ``model_obj`` (an adapted :class:`~anomalia.model.Model`) as a new version; returns it."""
    root = versions_dir(model)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".candidate-{uuid.uuid4().hex[:8]}"
    model_obj.save(tmp)
    version = str(model_obj.version)
    target = root / version
    if target.exists():
        version = f"{version}-{uuid.uuid4().hex[:4]}"
        target = root / version
    os.rename(tmp, target)
    model_obj.path, model_obj.version = target, version
    return version


def _serve(model: Path, version: str) -> None:
    """Put ``MODEL.versions/<version>`` at ``MODEL/``: copy beside it, then swap by renames."""
    source = versions_dir(model) / version
    if not (source / bundle.MANIFEST).is_file():
        raise BundleError(f"version {version} is not in {source.parent}; see `anomalia models rollback --help`")
    model = model.resolve()
    tmp = model.parent / f".{model.name}.partial-{uuid.uuid4().hex[:8]}"
    shutil.copytree(source, tmp)
    old = model.parent / f".{model.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(model, old)
    os.rename(tmp, model)
    shutil.rmtree(old, ignore_errors=True)


def promote(model: str | Path, version: str, gate: dict[str, Any] | None = None) -> None:
    """Serve ``version`` from ``MODEL/`` and record it in the pointer."""
    folder = Path(model)
    pointer = read_pointer(folder)
    _serve(folder, version)
    pointer["current"] = version
    pointer["history"].append(version)
    if gate is not None:
        pointer["candidates"][version] = {"promoted": True, "gate": gate}
    _write_pointer(folder, pointer)


def record_candidate(model: str | Path, version: str, gate: dict[str, Any]) -> None:
    """Write down a candidate that the gate kept from promotion."""
    pointer = read_pointer(model)
    pointer["candidates"][version] = {"promoted": False, "gate": gate}
    _write_pointer(model, pointer)


def rollback(model: str | Path) -> tuple[str, str]:
    """Serve the version promoted before the current one again; returns ``(from, to)``."""
    folder = Path(model)
    if not (folder / bundle.MANIFEST).is_file():
        raise InputError(f"{folder} is not a model folder (no {bundle.MANIFEST})")
    pointer = read_pointer(folder)
    history = pointer["history"]
    if len(history) < 2:
        raise InputError(
            f"{folder} has no earlier version to roll back to (versions: {history}); adapt it first "
            "(`anomalia adapt MODEL/ --from-feedback`)"
        )
    current = history.pop()
    previous = history[-1]
    _serve(folder, previous)
    pointer["current"] = previous
    pointer["rolled_back"].append(current)
    _write_pointer(folder, pointer)
    return current, previous
