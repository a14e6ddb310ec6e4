"""Occlusion: how much a row's score falls when one feature is set to its typical normal value."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import check_is_fitted
from ..detectors import BaseDetector, normalise_shares


def occlusion(detector: BaseDetector, X: Any) -> np.ndarray:
    """Each feature's share of the score drop when it is replaced by its median on normal training data
    (``feature_median_``).

    Works for any fitted detector (one scoring pass per feature); rows sum to 1.
    """
    check_is_fitted(detector)
    arr, _ = detector._validate(X, fitting=False)
    flat = arr.reshape(arr.shape[0], -1)
    typical = detector.feature_median_
    base = detector._score(arr)
    drops = np.empty(flat.shape, dtype=np.float64)
    for j in range(flat.shape[1]):
        masked = flat.copy()
        masked[:, j] = typical[j]
        drops[:, j] = base - detector._score(masked.reshape(arr.shape))
    return normalise_shares(drops)


def explain(detector: BaseDetector, X: Any) -> np.ndarray:
    """The detector's own ``explain`` where it has a per-feature decomposition, else :func:`occlusion`."""
    try:
        return detector.explain(X)
    except NotImplementedError:
        return occlusion(detector, X)
