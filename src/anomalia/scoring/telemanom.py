"""Telemanom's decision procedure (Hundman et al., "Detecting spacecraft anomalies using LSTMs and
nonparametric dynamic thresholding", KDD 2018), for the prediction errors of any forecaster.

The steps, with the settings of the paper and of its reference configuration as defaults:

1. **Smoothing.** The absolute prediction errors ``e`` are smoothed by an exponentially weighted mean
   whose span is a share (``smoothing_perc`` = 5 %) of the errors one threshold looks at
   (``batch_size * window_size`` = 70 * 30 = 2,100, so a span of 105 steps). The mean is the "adjusted"
   one (weights renormalised over the steps seen so far), and the first ``history`` smoothed errors (the
   forecaster's history length, 250), which rest on few errors, are replaced by the mean of the first
   ``2 * history``.
2. **Windows.** Errors are judged a batch of ``batch_size`` steps at a time, each with the threshold of the
   window of ``window_size`` batches that ends with it (a shorter window on short series); the first window
   judges all of its steps except the first ``2 * history`` (``history`` on series shorter than 2,500 steps,
   none under 1,800), when the smoothed errors still rest on little history.
3. **Threshold.** In each window (mean ``mu``, standard deviation ``sd``), ``eps = mu + z sd`` for the
   ``z`` in 2.5, 3, ..., 11.5 that maximises ``(delta_mu / mu + delta_sd / sd) / (|e_a| + |E_seq|^2)``:
   the relative fall of the mean and standard deviation when the errors above ``eps`` are removed, against
   the number of flagged steps ``e_a`` (each flagged step widened by ``error_buffer`` steps on each side)
   and of flagged sequences ``E_seq``. Candidates that flag more than 5 sequences or half the window are
   not taken. Unusually *low* errors are looked for the same way on the errors mirrored about ``mu``.
4. **Scale check.** A window flags nothing when its errors are small against the values themselves:
   unless ``sd > min_share * std(values)`` or ``max(e) > min_share * (p95 - p5 of the values)``, and
   ``max(e) > min_error``; and a flagged step must also exceed ``min_share * (p95 - p5)``. (Without
   ``values`` only ``min_error`` applies.)
5. **Buffer.** Each step above ``eps`` is widened by ``error_buffer`` (100) steps on each side; the
   contiguous runs that result are the anomalous sequences (a single isolated step is not a sequence).
6. **Pruning.** The sequences' maximum errors are sorted (largest first) and the largest error of the window
   that is not flagged appended; a sequence is kept only when some step of this list at or after it falls
   by at least ``p`` (0.13) relative to the value before: sequences that do not stand out from the next
   one, down to the normal errors, are reclassified as normal.

Every decision uses only errors up to the end of its batch (a delay of at most ``batch_size`` steps). No
labels are used anywhere. :func:`telemanom_threshold` returns the flags, the smoothed errors, the
threshold each step was judged by, the sequences and a score per sequence (how far its errors rise above
the threshold, in units of ``mu + sd``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core import InputError, find_runs

#: The sequence limit and the largest ``z`` (exclusive) of the reference configuration.
MAX_SEQUENCES, Z_LIMIT = 5, 12.0


@dataclass(frozen=True)
class TelemanomResult:
    """Per-step flags, smoothed errors and thresholds; the flagged sequences ``[start, stop)`` and scores."""

    flags: np.ndarray
    smoothed: np.ndarray
    thresholds: np.ndarray
    sequences: np.ndarray
    scores: np.ndarray


def adjusted_ewma(x: np.ndarray, span: int) -> np.ndarray:
    """Exponentially weighted mean with ``alpha = 2 / (span + 1)``, weights renormalised over the steps seen
    so far (``sum_i (1 - alpha)^(t - i) x_i / sum_i (1 - alpha)^(t - i)``); causal."""
    x = np.asarray(x, dtype=np.float64)
    if span <= 1 or x.size == 0:
        return x.copy()
    from scipy import signal  # imported on first use, as in smoothing.py

    a = 1.0 - 2.0 / (span + 1.0)
    num = signal.lfilter([1.0], [1.0, -a], x)
    den = signal.lfilter([1.0], [1.0, -a], np.ones_like(x))
    return np.asarray(num / den, dtype=np.float64)


def buffer_flags(flags: np.ndarray, buffer: int) -> np.ndarray:
    """Flags widened by ``buffer`` steps on each side (Telemanom's error buffer), for any decision."""
    mask = np.asarray(flags, dtype=bool).ravel()
    if buffer < 0:
        raise InputError(f"buffer must be a number of steps >= 0; got {buffer}")
    if buffer == 0 or not mask.any():
        return mask.copy()
    c = np.r_[0, np.cumsum(mask)]
    i = np.arange(mask.size)
    lo = np.clip(i - buffer, 0, mask.size)
    hi = np.clip(i + buffer + 1, 0, mask.size)
    return (c[hi] - c[lo]) > 0


def _sequences(mask: np.ndarray) -> np.ndarray:
    """Runs of True of at least two steps, ``[start, stop)``."""
    runs = find_runs(mask)
    return runs[(runs[:, 1] - runs[:, 0]) > 1] if len(runs) else runs


def _epsilon(e: np.ndarray, mu: float, sd: float, zs: np.ndarray, buffer: int) -> float:
    """The threshold of one window (step 3); ``mu + Z_LIMIT sd`` when no candidate qualifies."""
    eps_best = mu + Z_LIMIT * sd
    if sd <= 0 or mu == 0:
        return eps_best
    best = -np.inf
    for z in zs:
        eps = mu + z * sd
        above = e >= eps
        if not above.any():
            continue
        below = e[~above]
        flagged = buffer_flags(above, max(buffer - 1, 0))  # the reference widens by buffer - 1 while choosing
        n_flagged = int(flagged.sum())
        n_seq = len(_sequences(flagged))
        d_mu = (mu - below.mean()) / mu if below.size else 0.0
        d_sd = (sd - below.std()) / sd if below.size else 0.0
        score = (d_mu + d_sd) / (n_seq**2 + n_flagged)
        if score >= best and n_seq <= MAX_SEQUENCES and n_flagged < 0.5 * e.size:
            best, eps_best = score, float(eps)
    return eps_best


def _prune(e: np.ndarray, seqs: np.ndarray, normal_max: float, p: float) -> np.ndarray:
    """The sequences kept by pruning (step 6)."""
    if not len(seqs):
        return seqs
    maxes = np.array([e[a:b].max() for a, b in seqs])
    order = np.argsort(-maxes, kind="stable")
    m = np.r_[maxes[order], normal_max]
    with np.errstate(divide="ignore", invalid="ignore"):
        dec = np.where(m[:-1] != 0, (m[:-1] - m[1:]) / m[:-1], 0.0)
    big = np.flatnonzero(dec >= p)
    return seqs[np.sort(order[: big[-1] + 1])] if big.size else seqs[:0]


def telemanom_threshold(
    errors: np.ndarray,
    values: np.ndarray | None = None,
    *,
    batch_size: int = 70,
    window_size: int = 30,
    smoothing_perc: float = 0.05,
    error_buffer: int = 100,
    p: float = 0.13,
    history: int = 250,
    min_share: float = 0.05,
    min_error: float | None = 0.05,
    inverse: bool = True,
    smoothed: bool = False,
) -> TelemanomResult:
    """Flags from Telemanom's smoothed errors, windowed dynamic threshold, buffer and pruning (module docstring).

    Parameters
    ----------
    errors : array (n,)
        Absolute prediction errors, one per step (``smoothed=True``: already smoothed).
    values : array (n,), optional
        The predicted channel's values at the same steps, in the errors' units (for the scale check).
    batch_size, window_size : int
        Steps judged at a time, and batches per threshold window (70 and 30 in the paper's configuration).
    smoothing_perc : float
        EWMA span as a share of ``batch_size * window_size`` (0.05).
    error_buffer : int
        Steps added on each side of a flagged step (100).
    p : float
        Minimum relative decrease of pruning (0.13).
    history : int
        The forecaster's history length ``l_s`` (250): how many early errors are only context.
    min_share, min_error : float
        The scale check (0.05 and 0.05; ``min_error`` is in the errors' units: Telemanom's values are
        scaled into [-1, 1]; None skips it).
    inverse : bool
        Also look for unusually low errors (the reference does).
    smoothed : bool
        ``errors`` are already smoothed: skip step 1.
    """
    e_raw = np.asarray(errors, dtype=np.float64).ravel()
    n = e_raw.size
    if n < 2 or not np.isfinite(e_raw).all():
        raise InputError(f"errors must be a finite 1-D sequence of at least 2 steps; got {n} steps")
    v = None if values is None else np.asarray(values, dtype=np.float64).ravel()
    if v is not None and (v.size != n or not np.isfinite(v).all()):
        raise InputError(f"values must be finite with one value per error ({n}); got {v.size}")
    for name, val in (("batch_size", batch_size), ("window_size", window_size)):
        if int(val) != val or val < 1:
            raise InputError(f"{name} must be a positive integer; got {val!r}")
    if not 0.0 <= p < 1.0:
        raise InputError(f"p must be in [0, 1); got {p!r}")
    if smoothed:
        e_s = e_raw.copy()
    else:
        e_s = adjusted_ewma(e_raw, int(batch_size * window_size * smoothing_perc))
        if n > history > 0:
            e_s[:history] = e_s[: 2 * history].mean()
    ignore = 2 * history if n >= 2500 else history if n >= 1800 else 0
    w = int(window_size)
    n_windows = int((n - batch_size * w) / batch_size)  # truncated toward zero, as the reference does
    while n_windows < 0 and w > 1:
        w -= 1
        n_windows = int((n - batch_size * w) / batch_size)
    zs = np.arange(2.5, Z_LIMIT, 0.5)
    flags = np.zeros(n, dtype=bool)
    thresholds = np.full(n, np.nan)
    severity = np.zeros(n)
    for i in range(max(n_windows, 0) + 1):
        lo = i * batch_size
        hi = n if i == n_windows or n_windows < 0 else w * batch_size + i * batch_size
        seg = e_s[lo:hi]
        if seg.size < 2:
            continue
        mu, sd = float(seg.mean()), float(seg.std())
        # the first window judges all but the early errors; later ones their last batch (the final one up
        # to the end of the series, so that no step between the last full batch and the end goes unjudged)
        first = ignore if i == 0 else (w + i - 1) * batch_size - lo
        judged = np.arange(seg.size) >= first
        eps_high = _epsilon(seg, mu, sd, zs, error_buffer)
        thresholds[lo:hi][judged] = eps_high
        if v is not None:
            vs = v[lo:hi]
            hi_p, lo_p = np.percentile(vs, [95, 5])
            spread, v_sd = hi_p - lo_p, float(vs.std())
            if not (sd > min_share * v_sd or seg.max() > min_share * spread):
                continue
        else:
            spread = 0.0
        if min_error is not None and not seg.max() > min_error:
            continue
        kept_any = np.zeros(seg.size, dtype=bool)
        for e in (seg, 2 * mu - seg) if inverse else (seg,):
            eps = eps_high if e is seg else _epsilon(e, mu, sd, zs, error_buffer)
            above = (e >= eps) & (seg > min_share * spread) if v is not None else e >= eps
            if not above.any():
                continue
            flagged = buffer_flags(above, error_buffer) & judged
            if not flagged.any():
                continue
            candidates = ~(flagged | flags[lo:hi])
            normal_max = float(e[candidates].max()) if candidates.any() else 0.0
            for a, b in _prune(e, _sequences(flagged), normal_max, p):
                kept_any[a:b] = True
                s = float(np.abs(seg[a:b] - eps).max() / (mu + sd)) if mu + sd > 0 else 0.0
                severity[lo + a : lo + b] = np.maximum(severity[lo + a : lo + b], s)
        flags[lo:hi] |= kept_any
    seqs = _sequences(flags)
    final = np.zeros(n, dtype=bool)
    for a, b in seqs:
        final[a:b] = True
    scores = np.array([severity[a:b].max() for a, b in seqs]) if len(seqs) else np.zeros(0)
    return TelemanomResult(final, e_s, thresholds, seqs, scores)
