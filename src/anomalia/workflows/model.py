"""A model folder as the workflows use it: the saved detector plus the table encoding in front of it.

The detector is saved by :mod:`anomalia.bundle` (``anomalia.json`` + ``weights.safetensors``); the encoding
of the file's columns into the detector's numeric features is saved beside it as ``preprocess.json``
(plain JSON, no pickle). A folder without ``preprocess.json`` (a detector saved from Python on a numeric
array or DataFrame) is read with a pass-through encoding of its schema's columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._core import BundleError, InputError
from ..bundle import MANIFEST, load, read_manifest
from ..data import TabularEncoder
from ..detectors import BaseDetector

PREPROCESS = "preprocess.json"


@dataclass
class Model:
    """A fitted detector and the encoder that turns file columns into its features."""

    detector: BaseDetector
    encoder: TabularEncoder
    path: Path | None = None

    @property
    def feature_names(self) -> list[str]:
        return self.encoder.feature_names

    @property
    def input_columns(self) -> list[str]:
        return self.encoder.input_columns

    def save(self, path: str | Path) -> Path:
        """Write the detector (JSON manifest + safetensors) and ``preprocess.json`` to the folder ``path``."""
        folder = self.detector.save(path)
        (folder / PREPROCESS).write_text(json.dumps(self.encoder.to_dict(), indent=1))
        self.path = folder
        return folder

    def input_group_shares(self, shares: np.ndarray) -> np.ndarray:
        """Feature shares (n, n_features) summed per input column (one-hot groups add up)."""
        groups = self.encoder.groups
        if groups.size == len(set(groups.tolist())):
            return shares
        out = np.zeros((shares.shape[0], int(groups.max()) + 1), dtype=shares.dtype)
        np.add.at(out.T, groups, shares.T)
        return out


def _pass_through(manifest: dict[str, Any], folder: Path) -> TabularEncoder:
    schema = manifest.get("schema", {})
    cols = schema.get("columns")
    if not cols:
        raise BundleError(
            f"{folder} holds a detector fitted on an unnamed array and no {PREPROCESS}, so it cannot read "
            "files; fit it from a DataFrame with named columns, or with `anomalia fit`"
        )
    return TabularEncoder.from_dict(
        {
            "encoder_version": 1,
            "max_categories": 1,
            "impute": None,
            "columns": [{"name": c, "kind": "numeric", "fill": None, "categories": []} for c in cols],
        }
    )


def load_model(path: str | Path) -> Model:
    """Load a model folder written by ``anomalia fit`` (or by ``detector.save`` on a named DataFrame)."""
    folder = Path(path)
    manifest = read_manifest(folder)
    detector = load(folder)
    pre = folder / PREPROCESS
    if pre.is_file():
        try:
            state = json.loads(pre.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"{pre} is not valid JSON ({exc}); the model folder is damaged, fit again") from None
        try:
            encoder = TabularEncoder.from_dict(state)
        except InputError as exc:
            raise BundleError(f"{pre}: {exc}") from None
    else:
        encoder = _pass_through(manifest, folder)
    if len(encoder.feature_names) != detector.schema_.n_features:
        raise BundleError(
            f"{pre} encodes {len(encoder.feature_names)} features but {folder / MANIFEST} expects "
            f"{detector.schema_.n_features}; the files belong to different models, fit again"
        )
    return Model(detector, encoder, folder)


def model_info(path: str | Path) -> dict[str, Any]:
    """What ``anomalia info`` shows: manifest fields and the saved preprocessing, without loading weights."""
    folder = Path(path)
    m = read_manifest(folder)
    pre = folder / PREPROCESS
    preprocess = None
    if pre.is_file():
        try:
            preprocess = TabularEncoder.from_dict(json.loads(pre.read_text())).summary()
        except (json.JSONDecodeError, UnicodeDecodeError, InputError) as exc:
            raise BundleError(f"{pre} is damaged ({exc}); fit again") from None
    history = m.get("state", {}).get("history") or []
    return {
        "path": str(folder),
        "detector": m.get("detector"),
        "params": m.get("params", {}),
        "schema": m.get("schema", {}),
        "threshold": m.get("threshold"),
        "training": m.get("training", {}),
        "n_calibration": len(m.get("calibration_scores", [])),
        "anomalia_version": m.get("anomalia_version"),
        "format_version": m.get("format_version"),
        "created": m.get("created"),
        "epochs_run": sum(len(h.get("train_loss", [])) for h in history),
        "preprocess": preprocess,
    }
