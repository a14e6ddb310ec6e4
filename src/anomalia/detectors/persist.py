"""Detectors to and from model folders: the detector section of the manifest, through :mod:`anomalia.bundle`.

A detector section holds the registered name, the constructor arguments (a Threshold object with all its
parameters) and what ``_get_state`` returns; the arrays go to the weights file. :class:`anomalia.model.Model`
adds its preprocessing section to the same manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import bundle
from .._core import BundleError, InputError, ParameterError, check_is_fitted
from ..scoring import Threshold
from .registry import get_detector

if TYPE_CHECKING:  # the estimators import this module to save themselves
    from .base import BaseDetector


def _jsonable(value: Any) -> Any:
    if isinstance(value, Threshold):
        return value.to_dict()
    if hasattr(value, "get_params") and hasattr(value, "name"):  # a detector inside a parameter (ensemble members)
        return {"name": value.name, "params": {k: _jsonable(v) for k, v in value.get_params(deep=False).items()}}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.Generator):
        return None
    if isinstance(value, dict):  # MultiModalDetector's parts: a detector inside another, by name and arguments
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "get_params") and hasattr(value, "input_kind"):
        return {"detector": value.name, "params": {k: _jsonable(v) for k, v in value.get_params(deep=False).items()}}
    return value


def detector_section(detector: BaseDetector) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest section and the arrays of a fitted detector."""
    check_is_fitted(detector)
    meta, arrays = detector._get_state()
    params = {k: _jsonable(v) for k, v in detector.get_params(deep=False).items()}
    return {"name": detector.name, "input_kind": detector.input_kind, "params": params, **meta}, arrays


def save(detector: BaseDetector, path: str | Path, **sections: Any) -> Path:
    """Write a fitted detector (and any further manifest ``sections``) to the model folder ``path``."""
    section, arrays = detector_section(detector)
    bundle.write(path, {"detector": section, "preprocess": None, **sections}, arrays)
    return Path(path)


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):  # a member spec inside a list parameter
        return {k: _tuples(v) for k, v in value.items()}
    return value


def load_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments from their manifest form (JSON lists back to tuples, Threshold objects)."""
    # JSON has no tuples: every list-valued parameter (layer sizes, ...) was a tuple when saved
    out = {k: _tuples(v) if isinstance(v, list) else v for k, v in raw.items()}
    if isinstance(out.get("threshold"), dict):
        out["threshold"] = Threshold.from_dict(out["threshold"])
    return out


_params = load_params


def from_section(section: dict[str, Any], arrays: dict[str, np.ndarray], *, where: str = "the model") -> BaseDetector:
    """Rebuild a detector from its manifest section and arrays (see :func:`detector_section`)."""
    try:
        cls = get_detector(section["name"])
        known = set(cls._get_param_names())
        det = cls(**{k: v for k, v in _params(section["params"]).items() if k in known})
        det._set_state(section, arrays)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, InputError, ParameterError) as exc:
        raise BundleError(
            f"the manifest or the weights of {where} do not describe a model this anomalia can load ({exc}); "
            "re-fit it with `anomalia fit` (or detector.fit(...).save(...))"
        ) from None
    return det


def load(path: str | Path) -> BaseDetector:
    """Load the detector of a model folder; its scores are identical to the saved one's."""
    manifest, arrays = bundle.read(path)
    section = manifest.get("detector")
    if not isinstance(section, dict):
        raise BundleError(f"{Path(path) / bundle.MANIFEST} has no detector section; save the model again")
    return from_section(section, arrays, where=str(path))
