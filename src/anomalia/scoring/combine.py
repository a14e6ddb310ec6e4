"""Combining the p-values of several tests of one record, where nothing but per-part p-values exists.

Only Bonferroni is offered: ``min(1, k * min_j p_j)`` keeps ``P(p <= alpha) <= alpha`` whatever the
dependence between the parts. Fisher's and Stouffer's combinations assume independent parts; on parts that
are correlated (as the parts of one record are) they flag far more than ``alpha`` of normal records
(benchmarks/RESULTS.md, "Records with several parts"), so they are not provided. When the part scores are
at hand, calibrating one fused score (:class:`anomalia.detectors.MultiModalDetector`) keeps the guarantee
and loses less power than Bonferroni.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import InputError


def bonferroni(p_values: Any) -> np.ndarray:
    """``min(1, k * min_j p_j)`` per row of ``p_values`` (n rows, k parts): a valid p-value under any dependence."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise InputError(f"p_values must be 2-D (rows, parts) with at least one part; got shape {p.shape}")
    if not ((p > 0) & (p <= 1)).all():
        raise InputError("p_values must lie in (0, 1]")
    return np.minimum(1.0, p.shape[1] * p.min(axis=1))
