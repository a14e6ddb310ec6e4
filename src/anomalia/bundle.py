"""The model-folder format: one manifest ``anomalia.json`` and one ``weights.safetensors``, written together.

This module knows the format, not the models: it writes a JSON manifest (any sections the caller gives,
plus the format version, the package version, a creation time, a model version and the weights' checksum
and tensor table) and a dict of named numpy arrays, and reads them back checked. No pickle anywhere:
loading reads JSON and raw tensors and runs no code from the folder.

Writing is atomic: both files go to a new sibling folder that then takes the place of the old one, so a
reader sees the old model or the new one, never half of each. Folders written by anomalia 0.1 (format 1:
``preprocess.json`` / ``images.json`` beside the manifest, rows kept as buffers) are read and translated to
the current layout (:func:`read`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ._core import BundleError

FORMAT_VERSION = 2
#: Format versions :func:`read` understands (1 = anomalia 0.1, translated on reading).
READABLE_VERSIONS = (1, 2)
MANIFEST = "anomalia.json"
WEIGHTS = "weights.safetensors"
#: Files a model folder may hold (its ONNX export included, which a new fit replaces); anything else makes
#: :func:`write` refuse to replace the folder.
OWN_FILES = (MANIFEST, WEIGHTS, "preprocess.json", "images.json", "model.onnx", "model.onnx.json")


def package_version() -> str:
    try:
        return version("anomalia")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise BundleError(f"cannot save to {folder}: it is a file; give a folder path")
    if folder.is_dir():
        other = sorted(p.name for p in folder.iterdir() if p.name not in OWN_FILES)
        if other:
            raise BundleError(
                f"cannot save a model to {folder}: the folder holds other files ({', '.join(other[:5])}); "
                "give a new or empty folder, or a model folder to replace"
            )


def write(folder: str | Path, sections: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Write ``sections`` (JSON-able) and ``arrays`` as a model folder at ``folder``; returns the manifest.

    The manifest gets ``format_version``, ``anomalia_version``, ``created``, ``version`` (a model version:
    creation time and the start of the weights' checksum) and ``weights`` (file, sha256, tensor table).
    """
    target = Path(folder)
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        save_file(arrays, str(tmp / WEIGHTS))
        _readable_like_a_new_file(tmp / WEIGHTS)
        digest = sha256(tmp / WEIGHTS)
        created = _dt.datetime.now(_dt.UTC)
        manifest = {
            "format_version": FORMAT_VERSION,
            "anomalia_version": package_version(),
            "created": created.isoformat(timespec="seconds"),
            "version": f"{created:%Y%m%dT%H%M%S}-{digest[:8]}",
            **sections,
            "weights": {
                "file": WEIGHTS,
                "sha256": digest,
                "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for name in (WEIGHTS, MANIFEST):
            _fsync(tmp / name)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _readable_like_a_new_file(path: Path) -> None:
    """Give ``path`` the mode a newly created file gets (0666 less the umask): safetensors writes 0600, which
    left the weights unreadable to the group and others that can read the manifest beside them."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` at ``target``: one rename, or two when a model is there already."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a model folder, checked for a readable format version (0.1's is translated)."""
    path = Path(folder)
    file = path / MANIFEST
    if not path.exists():
        raise BundleError(f"no saved model at {path}: the folder does not exist")
    if not file.is_file():
        raise BundleError(f"{path} is not a saved anomalia model: it has no {MANIFEST}")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file} is not valid JSON ({exc}); the model folder is damaged, save it again") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{file} does not hold a manifest object; the model folder is damaged")
    fmt = manifest.get("format_version")
    if fmt not in READABLE_VERSIONS:
        raise BundleError(
            f"{path} was saved in format version {fmt!r}, but this anomalia ({package_version()}) reads formats "
            f"{list(READABLE_VERSIONS)}; load it with the anomalia version that wrote it "
            f"({manifest.get('anomalia_version', 'unknown')}) and re-fit, or save it again"
        )
    return _upgrade_v1(manifest, path) if fmt == 1 else manifest


def read(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest and the arrays of a model folder, every tensor checked against the manifest."""
    path = Path(folder)
    manifest = read_manifest(path)
    try:
        info = manifest["weights"]
        weights = path / info["file"]
        expected = info["tensors"]
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{path / MANIFEST} is incomplete ({exc!r} missing); save the model again") from None
    if not weights.is_file():
        raise BundleError(f"{path} has no weights file {weights.name}; the model folder is incomplete, save it again")
    if sha256(weights) != info.get("sha256"):
        raise BundleError(f"{weights} is corrupted: its checksum does not match the manifest; save the model again")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{weights} could not be read as safetensors ({exc}); save the model again") from None
    if set(arrays) != set(expected):
        raise BundleError(
            f"{weights} holds tensors {sorted(set(arrays) ^ set(expected))[:5]} that differ from the manifest; "
            "the weights belong to another model"
        )
    for k, v in arrays.items():
        if list(v.shape) != expected[k]["shape"] or str(v.dtype) != expected[k]["dtype"]:
            got = f"{list(v.shape)} {v.dtype}"
            raise BundleError(f"tensor {k!r} in {weights} is {got}; the manifest says {expected[k]}")
    return manifest, arrays


# ---------------------------------------------------------------------------------------------- format 1 (0.1)
def _side_file(path: Path, name: str) -> Any:
    file = path / name
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file} is not valid JSON ({exc}); the model folder is damaged, fit again") from None


def _upgrade_v1(m: dict[str, Any], path: Path) -> dict[str, Any]:
    """A 0.1 manifest in the current layout (weights keep their 0.1 names; :func:`read` checks them)."""
    try:
        training = m["training"]
        detector = {
            "name": m["detector"],
            "params": m["params"],
            "schema": m["schema"],
            "training": {
                "seed": training["seed"],
                "n_train_rows": training["n_train_rows"],
                "n_updates": training["n_updates"],
            },
            "calibration": {"scores": m["calibration_scores"]},
            "threshold": m["threshold"],
            "state": m["state"],
        }
    except (KeyError, TypeError) as exc:
        raise BundleError(
            f"{path} was written by anomalia 0.1 and its manifest is incomplete ({exc!r} missing); re-fit the model "
            "with `anomalia fit` (or detector.fit(...).save(...))"
        ) from None
    preprocess = None
    if (encoder := _side_file(path, "preprocess.json")) is not None:
        preprocess = {"kind": "table", "encoder": encoder}
    elif (images := _side_file(path, "images.json")) is not None:
        preprocess = {"kind": "images", **images}
    created = str(m.get("created", ""))
    digest = str(m.get("weights", {}).get("sha256", ""))
    return {
        **{k: m[k] for k in ("anomalia_version", "created", "weights") if k in m},
        "format_version": 1,
        "version": f"{created.replace('-', '').replace(':', '')[:15]}-{digest[:8]}",
        "detector": detector,
        "preprocess": preprocess,
    }


def _encoder_summary(encoder: dict[str, Any]) -> dict[str, Any]:
    columns = encoder.get("columns") or []
    cats = [c for c in columns if c.get("kind") == "category"]
    return {
        "input_columns": len(columns),
        "features": sum(len(c.get("categories") or []) if c.get("kind") == "category" else 1 for c in columns),
        "one_hot_columns": [f"{c.get('name')} ({len(c.get('categories') or [])})" for c in cats],
        "impute": encoder.get("impute") or "none (missing values are an error)",
    }


def _layer_sizes(tensors: dict[str, Any]) -> str | None:
    """The sizes of a dense network's layers, read from the weight shapes (``net.*.weight`` of rank 2)."""
    sizes = [shape["shape"] for key, shape in tensors.items() if key.startswith("net.") and key.endswith(".weight")]
    dense = [s for s in sizes if len(s) == 2]
    if not dense or len(dense) != len(sizes):
        return None
    return " → ".join(str(v) for v in [dense[0][1], *(s[0] for s in dense)])


def describe(path: str | Path) -> dict[str, Any]:
    """What ``anomalia info`` shows, from the manifest alone (the weights are not read, no detector is built)."""
    folder = Path(path)
    m = read_manifest(folder)
    det = m.get("detector") or {}
    pre = m.get("preprocess") or {}
    preprocess = None
    if pre.get("kind") == "table":
        encoder = pre.get("encoder")
        if not isinstance(encoder, dict) or not isinstance(encoder.get("columns"), list):
            raise BundleError(f"the preprocessing in {folder} is damaged; fit again")
        preprocess = _encoder_summary(encoder)
    history = (det.get("state") or {}).get("history") or []
    return {
        "path": str(folder),
        "name": m.get("name") or folder.resolve().name,
        "version": m.get("version"),
        "detector": det.get("name"),
        "input_kind": det.get("input_kind", "table"),
        "params": det.get("params", {}),
        "schema": det.get("schema", {}),
        "threshold": det.get("threshold"),
        "training": det.get("training", {}),
        "n_calibration": len((det.get("calibration") or {}).get("scores", [])),
        "anomalia_version": m.get("anomalia_version"),
        "format_version": m.get("format_version"),
        "created": m.get("created"),
        "epochs_run": sum(len(h.get("train_loss", [])) for h in history),
        "effective": (det.get("state") or {}).get("effective") or {},
        "preprocess": preprocess,
        "images": {k: pre[k] for k in ("size", "mode")} if pre.get("kind") == "images" else None,
        "label_column": m.get("label_column"),
        "layers": _layer_sizes((m.get("weights") or {}).get("tensors") or {}),
    }
