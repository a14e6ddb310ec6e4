"""Runs of True in a 1-D mask: the one run-finder that thresholds, metrics and reports use."""

from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import InputError


def find_runs(mask: Any) -> np.ndarray:
    """Runs of True in a 1-D mask as int64 rows ``[start, stop)``, in order (shape (k, 2)).

    Values count as True by their truth value (``bool(v)``).

    >>> find_runs([0, 1, 1, 0, 1]).tolist()
    [[1, 3], [4, 5]]
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 1:
        raise InputError(f"mask must be 1-D; got shape {m.shape}")
    padded = np.zeros(m.size + 2, dtype=bool)
    padded[1:-1] = m
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # alternately a start and a stop
    return edges.astype(np.int64, copy=False).reshape(-1, 2)
