"""Standardisation learned at fit and saved with the model: per feature (records, series) or per channel
(images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / scale`` per feature; constant features get scale 1, so any change in them counts."""

    mean: np.ndarray
    scale: np.ndarray

    @staticmethod
    def _moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X2 = X.reshape(X.shape[0], -1)
        return X2.mean(axis=0, dtype=np.float64), X2.std(axis=0, dtype=np.float64)

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        mean, std = cls._moments(X)
        scale = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X2 = X.reshape(X.shape[0], -1)
        return ((X2 - self.mean) / self.scale).astype(np.float32, copy=False).reshape(X.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(np.asarray(d["mean"], dtype=np.float32), np.asarray(d["scale"], dtype=np.float32))


@dataclass(frozen=True)
class ChannelScaler(Standardizer):
    """``(x - mean[c]) / scale[c]`` per channel of (n, C, H, W) images, learned at fit."""

    @staticmethod
    def _moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X.mean(axis=(0, 2, 3), dtype=np.float64), X.std(axis=(0, 2, 3), dtype=np.float64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean[:, None, None]) / self.scale[:, None, None]).astype(np.float32, copy=False)
