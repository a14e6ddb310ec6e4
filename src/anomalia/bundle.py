"""Saved models: a folder with ``anomalia.json`` (the manifest) and ``weights.safetensors``.

No pickle anywhere: loading reads JSON and raw tensors, rebuilds the detector from its registered name and
parameters, and checks every tensor against the manifest before use.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ._core import BundleError, Schema, check_is_fitted
from .detectors import BaseDetector, get_detector
from .scoring import Threshold

FORMAT_VERSION = 1
MANIFEST = "anomalia.json"
WEIGHTS = "weights.safetensors"


def _package_version() -> str:
    try:
        return version("anomalia")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Threshold):
        return value.spec
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.Generator):
        return None
    return value


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(detector: BaseDetector, path: str | Path) -> Path:
    """Write a fitted detector to the folder ``path`` (created if needed); returns the folder."""
    check_is_fitted(detector)
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise BundleError(f"cannot save to {folder}: it is a file; give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    meta, arrays = detector._get_state()
    arrays = {
        **arrays,
        "buffer.replay": detector.replay_,
        "buffer.calibration_rows": detector.calibration_rows_,
    }
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(arrays, str(tmp))
    digest = _sha256(tmp)
    os.replace(tmp, folder / WEIGHTS)
    threshold = detector.threshold_
    manifest = {
        "format_version": FORMAT_VERSION,
        "anomalia_version": _package_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "detector": detector.name,
        "params": {k: _jsonable(v) for k, v in detector.get_params(deep=False).items()},
        "schema": detector.schema_.to_dict(),
        "state": meta,
        "training": {
            "n_train_rows": detector.n_train_rows_,
            "n_updates": detector.n_updates_,
            "seed": detector.seed_,
        },
        "calibration_scores": detector.calibration_scores_.tolist(),
        "threshold": None if threshold is None else threshold.to_dict(),
        "weights": {
            "file": WEIGHTS,
            "sha256": digest,
            "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        },
    }
    tmp_manifest = folder / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp_manifest, folder / MANIFEST)
    return folder


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a saved model, checked for format version."""
    folder = Path(path)
    file = folder / MANIFEST
    if not folder.exists():
        raise BundleError(f"no saved model at {folder}: the folder does not exist")
    if not file.is_file():
        raise BundleError(f"{folder} is not a saved anomalia model: it has no {MANIFEST}")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file} is not valid JSON ({exc}); the model folder is damaged, save it again") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{file} does not hold a manifest object; the model folder is damaged")
    fmt = manifest.get("format_version")
    if fmt != FORMAT_VERSION:
        raise BundleError(
            f"{folder} was saved in format version {fmt!r}, but this anomalia ({_package_version()}) reads format "
            f"{FORMAT_VERSION}; load it with the anomalia version that wrote it "
            f"({manifest.get('anomalia_version', 'unknown')}) and refit, or save it again"
        )
    return manifest


def load(path: str | Path) -> BaseDetector:
    """Load a detector saved with :func:`save`; its scores are identical to the saved one's."""
    folder = Path(path)
    m = read_manifest(folder)
    try:
        cls = get_detector(m["detector"])
        weights_info = m["weights"]
        weights = folder / weights_info["file"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{folder / MANIFEST} is incomplete or names an unknown detector: {exc}") from None
    if not weights.is_file():
        raise BundleError(f"{folder} has no weights file {weights.name}; the model folder is incomplete, save it again")
    if _sha256(weights) != weights_info.get("sha256"):
        raise BundleError(f"{weights} is corrupted: its checksum does not match the manifest; save the model again")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{weights} could not be read as safetensors ({exc}); save the model again") from None
    expected = weights_info.get("tensors", {})
    if set(arrays) != set(expected):
        raise BundleError(
            f"{weights} holds tensors {sorted(set(arrays) ^ set(expected))[:5]} that differ from the manifest; "
            "the weights belong to another model"
        )
    for k, v in arrays.items():
        if list(v.shape) != expected[k]["shape"] or str(v.dtype) != expected[k]["dtype"]:
            got = f"{list(v.shape)} {v.dtype}"
            raise BundleError(f"tensor {k!r} in {weights} is {got}; the manifest says {expected[k]}")
    # JSON has no tuples: every list-valued parameter (layer sizes, ...) was a tuple when saved
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in m["params"].items()}
    try:
        det = cls(**params)
        det.schema_ = Schema.from_dict(m["schema"])
        det.n_features_in_ = det.schema_.n_features
        if det.schema_.columns is not None:
            det.feature_names_in_ = np.asarray(det.schema_.columns, dtype=object)
        det.seed_ = int(m["training"]["seed"])
        det.n_train_rows_ = int(m["training"]["n_train_rows"])
        det.n_updates_ = int(m["training"]["n_updates"])
        det.replay_ = arrays["buffer.replay"]
        det.calibration_rows_ = arrays["buffer.calibration_rows"]
        det.calibration_scores_ = np.asarray(m["calibration_scores"], dtype=np.float64)
        det.threshold_ = None if m["threshold"] is None else Threshold.from_dict(m["threshold"])
        det._set_state(m["state"], arrays)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise BundleError(f"the weights in {folder} do not match the manifest's model: {exc}") from None
    return det
