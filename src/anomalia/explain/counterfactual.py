"""Which column, made normal, takes the anomaly away: the ranking of a flagged row's top columns.

A reconstruction model spreads the error of one unusual value over the columns correlated with it (it pulls
them towards a record that fits the odd value), so a row whose column ``b`` is shifted far out can show as
large a relative error in ``a`` and ``c``. The check that tells them apart is a counterfactual: set one
candidate column to a normal value (its median on normal data; a one-hot text column to the category the
model expected) and score the row again. The column whose repair lowers the score the most is the one the
anomaly is in. :func:`counterfactual_top` does this for the few candidates that the relative parts of the
score (one pass) put first, so it costs one scoring pass per candidate (and one for the expected
categories of one-hot columns) over the flagged rows only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..detectors import BaseDetector

#: Candidate columns per row that the counterfactual check re-ranks (the top ones by relative part).
CANDIDATES = 5
#: Rows per scoring call of the repaired rows: always this many (the last call padded), so that a row's
#: repaired score does not depend on how many rows were flagged with it (float32 results can depend on the
#: shape of a batch): a file scored whole and in partitions gives the same explanations.
FIXED_ROWS = 1024


def _fixed(fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> np.ndarray:
    n = X.shape[0]
    padded = np.zeros((-(-n // FIXED_ROWS) * FIXED_ROWS, X.shape[1]), dtype=X.dtype)
    padded[:n] = X
    return np.concatenate([fn(padded[i : i + FIXED_ROWS]) for i in range(0, padded.shape[0], FIXED_ROWS)])[:n]


def counterfactual_top(
    detector: BaseDetector,
    X: np.ndarray,
    candidates: np.ndarray,
    groups: np.ndarray,
    base: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Re-rank each row's ``candidates`` (input-column indices, best first) by the score drop of repairing it.

    Parameters
    ----------
    detector : BaseDetector
        A fitted table detector.
    X : ndarray of shape (n, n_features)
        The rows, encoded as the detector reads them.
    candidates : ndarray of shape (n, m)
        Input-column indices per row (``-1`` = none).
    groups : ndarray of shape (n_features,)
        The input column of each encoded feature.
    base : ndarray of shape (n,), optional
        The rows' scores, when known (else they are computed).

    Returns
    -------
    (index, share) of shape (n, m), re-ranked; a share is the candidate's drop over the sum of the positive
    drops of the row's candidates. None when no candidate of any row lowers the score.
    """
    X = np.asarray(X, dtype=np.float32)
    n, m = candidates.shape
    groups = np.asarray(groups)
    typical = np.broadcast_to(np.asarray(detector.feature_median_, dtype=np.float32), X.shape).copy()
    widths = np.bincount(groups)
    one_hot = (widths > 1).any() and detector.expected(X[:1]) is not None
    expected = _fixed(detector.expected, X) if one_hot else None
    if expected is not None:  # a one-hot column: the category the model expected
        for col in np.flatnonzero(widths > 1):
            cols = np.flatnonzero(groups == col)
            best = np.argmax(expected[:, cols], axis=1)
            block = np.zeros((n, cols.size), dtype=np.float32)
            block[np.arange(n), best] = 1.0
            typical[:, cols] = block
    base = detector.anomaly_score(X) if base is None else np.asarray(base, dtype=np.float64)
    drops = np.full((n, m), -np.inf)
    for c in range(m):
        col = candidates[:, c]
        valid = col >= 0
        if not valid.any():
            continue
        mask = (groups[None, :] == col[:, None]) & valid[:, None]
        repaired = np.where(mask, typical, X)
        drops[valid, c] = (base - _fixed(detector.anomaly_score, repaired))[valid]
    positive = np.where(np.isfinite(drops), np.maximum(drops, 0.0), 0.0)
    total = positive.sum(axis=1)
    if not (total > 0).any():
        return None
    order = np.argsort(-drops, axis=1, kind="stable")
    index = np.take_along_axis(candidates, order, axis=1)
    share = np.take_along_axis(positive, order, axis=1) / np.where(total > 0, total, 1.0)[:, None]
    keep = total <= 0  # no repair helps: keep the order and shares of the relative parts
    index[keep] = candidates[keep]
    return index, np.where(keep[:, None], np.nan, share)
