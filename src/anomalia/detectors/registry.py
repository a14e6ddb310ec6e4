"""Detectors by stable name: the names the command line, config files and saved models use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .._core import ParameterError

if TYPE_CHECKING:
    from .base import BaseDetector

D = TypeVar("D", bound="type[BaseDetector]")
_REGISTRY: dict[str, type[BaseDetector]] = {}


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make a detector available as ``name``."""

    def deco(cls: D) -> D:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"detector name {name!r} is already taken by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_detector(name: str) -> type[BaseDetector]:
    """The detector class registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown detector {name!r}; choose one of {sorted(_REGISTRY)}") from None


def detector_names() -> list[str]:
    return sorted(_REGISTRY)


def make_detector(name: str, **params: object) -> BaseDetector:
    """``get_detector(name)(**params)`` with a clear error for unknown parameters."""
    cls = get_detector(name)
    known = set(cls._get_param_names())
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParameterError(f"detector {name!r} has no parameter(s) {unknown}; it takes {sorted(known)}")
    return cls(**params)
