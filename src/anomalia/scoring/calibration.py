"""Split-conformal calibration: scores of held-out normal data turn any score into a p-value."""

from __future__ import annotations

import numpy as np

from .._core import InputError


def conformal_p_values(calibration_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``p = (1 + #{calibration scores >= s}) / (n_cal + 1)`` for each score ``s``.

    Under exchangeability with the calibration data, ``P(p <= alpha) <= alpha`` for a new normal row, so
    flagging ``p <= alpha`` has a false-alarm rate of at most ``alpha``. Values lie in (0, 1].
    """
    cal = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    if cal.size == 0:
        raise InputError("calibration_scores is empty; calibrate on at least one held-out normal score")
    s = np.asarray(scores, dtype=np.float64)
    n_at_least = cal.size - np.searchsorted(cal, s, side="left")
    return (1.0 + n_at_least) / (cal.size + 1.0)
