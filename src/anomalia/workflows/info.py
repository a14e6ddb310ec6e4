"""``info``: what a model folder holds, from its manifest alone (no weights are read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import bundle
from .._core import BundleError, InputError
from ..data import TabularEncoder


def model_info(path: str | Path) -> dict[str, Any]:
    """What ``anomalia info`` shows: manifest fields and the saved preprocessing, without loading weights."""
    folder = Path(path)
    m = bundle.read_manifest(folder)
    det = m.get("detector") or {}
    pre = m.get("preprocess") or {}
    preprocess = None
    if pre.get("kind") == "table":
        try:
            preprocess = TabularEncoder.from_dict(pre["encoder"]).summary()
        except (InputError, KeyError, TypeError) as exc:
            raise BundleError(f"the preprocessing in {folder} is damaged ({exc}); fit again") from None
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
    }
