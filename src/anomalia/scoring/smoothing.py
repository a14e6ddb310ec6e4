"""Score smoothing for series: causal (each output uses only the current and earlier scores).

- :func:`ewma`: exponentially weighted moving average (Hundman et al. 2018 smooth prediction errors so).
- :func:`running_tail_probability`: how unusual the recent scores are against the longer past, in [0, 1]
  (the "anomaly likelihood" of Ahmad et al. 2017): a label-free rescaling that makes the scores of
  different series comparable, so that one threshold can serve a whole corpus.
"""

from __future__ import annotations

import math

import numpy as np

from .._core import InputError


def _series(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise InputError(f"{name} must be 1-D (one score per time step); got shape {s.shape}")
    if not np.isfinite(s).all():
        raise InputError(f"{name} contain NaN or inf; smooth finite scores")
    return s


def ewma(scores: np.ndarray, span: int, *, initial: float | None = None) -> np.ndarray:
    """Exponentially weighted moving average with ``alpha = 2 / (span + 1)``, computed causally.

    ``y[0] = x[0]`` (or ``alpha x[0] + (1 - alpha) initial`` when ``initial`` carries the state of an
    earlier call), ``y[t] = alpha x[t] + (1 - alpha) y[t-1]``. ``span`` <= 1 returns the scores unchanged.
    """
    s = _series(scores)
    if span <= 1 or s.size == 0:
        return s.copy()
    alpha = 2.0 / (span + 1.0)
    zi = None
    if initial is None:
        first = s[0]
        zi = np.array([(1.0 - alpha) * first])
    else:
        zi = np.array([(1.0 - alpha) * float(initial)])
    from scipy import signal  # imported on first use: it slows every command's start

    y, _ = signal.lfilter([alpha], [1.0, -(1.0 - alpha)], s, zi=zi)
    return np.asarray(y, dtype=np.float64)


def _rolling_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values (fewer at the start), causal."""
    c = np.cumsum(np.r_[0.0, x])
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)


def running_zscore(scores: np.ndarray, *, short: int = 10, long: int = 2000, min_history: int = 100) -> np.ndarray:
    """``(mean of the last short scores - mean of the long scores before them) / their standard deviation``.

    Causal: the value at step t uses steps up to t only; 0 before ``min_history`` scores have been seen.
    Unlike its tail probability (:func:`running_tail_probability`) it does not saturate, so it still ranks
    the most extreme steps.
    """
    s = _series(scores)
    n = s.size
    recent = _rolling_mean(s, short)
    c1 = np.cumsum(np.r_[0.0, s])
    c2 = np.cumsum(np.r_[0.0, s * s])
    end = np.clip(np.arange(n) - short + 1, 0, None)  # the history ends before the short window
    start = np.clip(end - long, 0, None)
    cnt = end - start
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[end] - c1[start]) / cnt
        var = (c2[end] - c2[start]) / cnt - mean * mean
        std = np.sqrt(np.clip(var, 0.0, None))
        std = np.maximum(std, 1e-6 * np.maximum(np.abs(mean), 1e-12))
        z = (recent - mean) / std
    z[cnt < min_history] = 0.0
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


def running_tail_probability(
    scores: np.ndarray, *, short: int = 10, long: int = 2000, min_history: int = 100
) -> np.ndarray:
    """``1 - Q(z)`` of :func:`running_zscore`: the Gaussian tail probability of the mean of the last ``short``
    scores against the mean and standard deviation of the ``long`` scores before them.

    Close to 1 when recent scores are far above what the series usually scores; 0.5 before ``min_history``
    scores have been seen. Causal: the value at step t uses steps up to t only.
    """
    from scipy import special  # imported on first use, as above

    z = running_zscore(scores, short=short, long=long, min_history=min_history)
    return 0.5 * special.erfc(-z / math.sqrt(2.0))
