"""Split-conformal calibration: scores of held-out normal data turn any score into a p-value."""

from __future__ import annotations

import numpy as np

from .._core import InputError

#: From this many scores on, p-values sort the scores instead of searching for each one.
SORTED_COUNT_MIN = 2048


def conformal_p_values(calibration_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``p = (1 + #{calibration scores >= s}) / (n_cal + 1)`` for each score ``s``.

    Under exchangeability with the calibration data, ``P(p <= alpha) <= alpha`` for a new normal row, so
    flagging ``p <= alpha`` has a false-alarm rate of at most ``alpha``. Values lie in (0, 1].
    """
    cal = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    if cal.size == 0:
        raise InputError("calibration_scores is empty; calibrate on at least one held-out normal score")
    s = np.asarray(scores, dtype=np.float64)
    return (1.0 + _count_at_least(cal, s)) / (cal.size + 1.0)


def _count_at_least(cal: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``#{cal >= s_i}`` for each ``s_i``; ``cal`` sorted ascending. NaN counts as above every value.

    A binary search per score costs a cache miss per level. For many scores it is about 2.5x faster to sort
    them once and place the few calibration scores among them instead: a calibration score ``c`` that
    ``pos`` sorted scores do not exceed (``s <= c``) is ``>=`` exactly the first ``pos`` of them.
    """
    if s.size < SORTED_COUNT_MIN or s.ndim != 1:
        return cal.size - np.searchsorted(cal, s, side="left")
    order = np.argsort(s)
    pos = np.searchsorted(s[order], cal, side="right")  # sorted scores <= each calibration score
    at_least = np.cumsum(np.bincount(pos, minlength=s.size + 1)[::-1])[::-1][1:]  # calibration scores with pos > i
    out = np.empty(s.size, dtype=np.int64)
    out[order] = at_least
    return out
