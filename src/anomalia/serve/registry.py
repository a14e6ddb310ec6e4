"""The loaded models of a service: each under a name, with its folder, the version in use and the previous
version kept for rollback. A reload reads the model's own folder again (no request can point the service
at another path), off the event loop, and swaps the new version in with one reference assignment: requests
already in flight finish on the version they started with, the next ones get the new one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import Model
from .bodies import Column, ServiceError, model_columns


@dataclass(frozen=True)
class Loaded:
    """One loaded version of a model and what requests check against."""

    model: Model
    columns: list[Column] | None

    @classmethod
    def of(cls, model: Model) -> Loaded:
        return cls(model, model_columns(model) if model.input_kind == "table" else None)


class ModelEntry:
    """A served model: its folder, the version in use (``current``) and the one before (``previous``)."""

    def __init__(self, name: str, path: Path, model: Model) -> None:
        self.name, self.path = name, path
        self.current: Loaded = Loaded.of(model)
        self.previous: Loaded | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Model:
        return self.current.model

    def reload(self) -> tuple[str, str]:
        """Load the folder again and swap it in; (previous version, new version). Blocking: call it in a thread."""
        with self._lock:
            try:
                new = Model.load(self.path)
            except (ValueError, OSError) as exc:
                raise ServiceError(409, f"model {self.name!r} could not be reloaded from its folder: {exc}") from None
            new.name = self.name
            old = self.current.model
            if new.input_kind != old.input_kind:
                raise ServiceError(
                    409, f"the folder of {self.name!r} now holds a {new.input_kind} model, not a {old.input_kind} "
                    "one; serve it under another name",
                )
            if new.input_kind == "series" and new.channels != old.channels:
                raise ServiceError(
                    409, f"the new version of {self.name!r} reads channels {new.channels}, not {old.channels}; the "
                    "series state of its keys would not fit it; serve it under another name",
                )
            self.previous, self.current = self.current, Loaded.of(new)
            return old.version, new.version

    def rollback(self) -> tuple[str, str]:
        """Swap the previous version back in; (version left, version now in use)."""
        with self._lock:
            if self.previous is None:
                raise ServiceError(409, f"model {self.name!r} has no previous version to roll back to; reload first")
            self.previous, self.current = self.current, self.previous
            return self.previous.model.version, self.current.model.version

    def manifest(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` answers: version, schema, threshold, calibration, training summary."""
        m = self.model
        det = m.detector
        threshold = det.fitted_threshold()
        cal = det.calibrator_.scores
        out: dict[str, Any] = {
            "name": self.name,
            "version": m.version,
            "previous_version": None if self.previous is None else self.previous.model.version,
            "input_kind": m.input_kind,
            "detector": det.name,
            "params": _jsonable(det.get_params()),
            "threshold": {"name": str(threshold), "value": _float(getattr(threshold, "threshold_", None))},
        }
        if m.input_kind == "table":
            cols = self.current.columns
            out["schema"] = None if cols is None else [{"name": c.name, "type": c.kind} for c in cols]
            out["n_features"] = int(det.n_features_in_)
        elif m.input_kind == "series":
            out["schema"] = [{"name": c, "type": "number"} for c in m.channels]
            out["time_column"] = getattr(det, "time_column", None)
            out["window"] = int(getattr(det, "window", 0))
        else:
            c, h, w = det.image_shape_  # type: ignore[attr-defined]
            out["schema"] = {"channels": int(c), "height": int(h), "width": int(w)}
        if cal is not None and len(cal):
            import numpy as np

            q = np.quantile(np.asarray(cal, dtype=np.float64), [0.5, 0.9, 0.99, 1.0])
            out["calibration"] = {
                "n": len(cal),
                "median": float(q[0]), "q90": float(q[1]), "q99": float(q[2]), "max": float(q[3]),
            }
        history = getattr(det, "history_", None)
        if isinstance(history, list) and history:
            last = history[-1]
            train = last.get("train_loss") or []
            val = last.get("val_loss") or []
            out["training"] = {
                "fits": len(history),
                "epochs": len(train),
                "best_epoch": last.get("best_epoch"),
                "final_train_loss": _float(train[-1]) if train else None,
                "final_val_loss": _float(val[-1]) if val else None,
                "stopped_early": last.get("stopped_early"),
                "seconds": last.get("seconds"),
            }
        return out


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, str | int | float | bool):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


class ModelRegistry:
    """The served models by name."""

    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}

    @classmethod
    def from_paths(cls, paths: list[str | Path], names: list[str] | None = None) -> ModelRegistry:
        """Load model folders; each is named by ``names`` (in order) or by its folder's name."""
        if not paths:
            raise ValueError("give at least one model folder to serve")
        if names and len(names) != len(paths):
            raise ValueError(f"{len(names)} --name value(s) for {len(paths)} model folder(s); give one per folder")
        reg = cls()
        for i, p in enumerate(paths):
            folder = Path(p)
            model = Model.load(folder)
            name = names[i] if names else folder.resolve().name
            reg.add(name, folder, model)
        return reg

    def add(self, name: str, path: Path, model: Model) -> ModelEntry:
        if not name or "/" in name or name in self._entries:
            raise ValueError(f"model name {name!r} is empty, has a '/', or is used twice; pass --name")
        model.name = name
        entry = ModelEntry(name, path, model)
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise ServiceError(404, f"no model named {name!r}; served: {sorted(self._entries)}", "name") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._entries.values())
