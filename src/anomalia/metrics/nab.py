"""The NAB score (Lavin & Ahmad, "Evaluating real-time anomaly detection algorithms", 2015), from its
definition, with the corpus-wide threshold sweep NAB's scoreboard uses.

For one series with labelled anomaly windows (index ranges, both ends included):

- the first ``min(floor(0.15 n), 750)`` steps are probationary and never scored;
- inside a window of width ``w`` ending at ``e``, a detection at step ``i`` is worth
  ``A_TP * sigma(-(e - i + 1) / w) / sigma(-1)``, with the scaled sigmoid
  ``sigma(x) = 2 / (1 + exp(5 x)) - 1`` (``sigma(x) = -1`` for ``x >= 3``); only the best (earliest)
  detection in a window counts, and a window without detection costs ``-A_FN``;
- a detection outside every window costs ``A_FP * sigma(|e' - i| / (w' - 1))`` relative to the previous
  window (end ``e'``, width ``w'``), and ``-A_FP`` before the first window; every such detection counts.

The raw scores of all series add up; the normalised score is ``100 (S - S_null) / (S_perfect - S_null)``
with ``S_null = -A_FN * W`` (no detections) and ``S_perfect = A_TP * W`` (each of the ``W`` windows detected
at its first step). A detection is ``score >= threshold``. NAB picks, per profile, the one threshold that
maximises the corpus score (:func:`nab_sweep`); :func:`nab_score` scores given flags (label-free thresholds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import InputError

PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class NABProfile:
    """Application profile: weights of true positives, false positives and false negatives."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0

    @classmethod
    def from_cost_matrix(cls, cm: Mapping[str, float]) -> NABProfile:
        """From NAB's ``profiles.json`` entry (``{"tpWeight": ..., "fpWeight": ..., "fnWeight": ...}``)."""
        return cls(float(cm["tpWeight"]), float(cm["fpWeight"]), float(cm["fnWeight"]))


#: The three profiles of NAB's config/profiles.json.
PROFILES: dict[str, NABProfile] = {
    "standard": NABProfile(1.0, 0.11, 1.0),
    "reward_low_FP_rate": NABProfile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": NABProfile(1.0, 0.11, 2.0),
}


def scaled_sigmoid(x: float) -> float:
    """``2 / (1 + exp(5 x)) - 1``; -1 from ``x >= 3`` on."""
    if x >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probationary_length(n: int, percent: float = PROBATION_PERCENT) -> int:
    """Steps at the start of a series of ``n`` that are never scored."""
    return int(min(math.floor(percent * n), percent * 5000))


@dataclass(frozen=True)
class _Points:
    """Per scored step: its detection value and its window (-1 outside windows)."""

    index: np.ndarray  # step numbers that are scored (after probation)
    value: np.ndarray  # weighted worth of a detection there
    window: np.ndarray  # window number, -1 outside
    n_windows: int


def _windows(windows: Sequence[Sequence[int]], n: int) -> np.ndarray:
    w = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    if w.size and (w[:, 0].min() < 0 or w[:, 1].max() >= n or (w[:, 1] < w[:, 0]).any()):
        raise InputError(
            f"windows must be (start, end) step pairs inside [0, {n - 1}] with start <= end; got {w.tolist()}"
        )
    if len(w) > 1 and (w[1:, 0] <= w[:-1, 1]).any():
        raise InputError("windows must be sorted and must not overlap")
    return w


def _points(n: int, windows: Sequence[Sequence[int]], profile: NABProfile, probation: float) -> _Points:
    w = _windows(windows, n)
    max_tp = scaled_sigmoid(-1.0)
    value = np.empty(n)
    win = np.full(n, -1, dtype=np.int64)
    prev_end, prev_width = None, None
    k = 0
    for i in range(n):
        if k < len(w) and w[k, 0] <= i <= w[k, 1]:
            start, end = w[k]
            width = end - start + 1
            value[i] = scaled_sigmoid(-(end - i + 1) / width) * profile.tp / max_tp
            win[i] = k
            if i == end:
                prev_end, prev_width, k = end, width, k + 1
        else:
            pos = 3.0 if prev_end is None else abs(prev_end - i) / max(prev_width - 1, 1)
            value[i] = scaled_sigmoid(pos) * profile.fp
    skip = probationary_length(n, probation)
    scored_windows = np.unique(win[skip:][win[skip:] >= 0])
    remap = np.full(len(w) + 1, -1, dtype=np.int64)
    remap[scored_windows] = np.arange(scored_windows.size)
    return _Points(np.arange(skip, n), value[skip:], remap[win[skip:]], int(scored_windows.size))


def normalise(raw: float, n_windows: int, profile: NABProfile) -> float:
    """``100 (raw - S_null) / (S_perfect - S_null)``."""
    null, perfect = -profile.fn * n_windows, profile.tp * n_windows
    if perfect == null:
        raise InputError("the NAB score needs at least one labelled window after the probationary period")
    return 100.0 * (raw - null) / (perfect - null)


def nab_raw_score(
    flags: Any, windows: Sequence[Sequence[int]], profile: NABProfile, *, probation: float = PROBATION_PERCENT
) -> tuple[float, int]:
    """Raw NAB score of boolean ``flags`` (one per step) on one series, and its number of scored windows."""
    f = np.asarray(flags).astype(bool).ravel()
    pts = _points(f.size, windows, profile, probation)
    hit = f[pts.index]
    outside = pts.window < 0
    raw = float(pts.value[hit & outside].sum())
    for k in range(pts.n_windows):
        det = np.flatnonzero(hit & (pts.window == k))
        raw += float(pts.value[det[0]]) if det.size else -profile.fn
    return raw, pts.n_windows


def nab_score(
    flags: Sequence[Any],
    windows: Sequence[Sequence[Sequence[int]]],
    profile: NABProfile | str = "standard",
    *,
    probation: float = PROBATION_PERCENT,
) -> float:
    """Normalised NAB score (0 = no detections, 100 = perfect) of per-series flags over a corpus."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    parts = [nab_raw_score(f, w, prof, probation=probation) for f, w in zip(flags, windows, strict=True)]
    return normalise(sum(p[0] for p in parts), sum(p[1] for p in parts), prof)


@dataclass(frozen=True)
class NABSweep:
    """The corpus NAB score for every distinct threshold (detection: ``score >= threshold``)."""

    thresholds: np.ndarray  # descending
    raw: np.ndarray
    normalised: np.ndarray
    n_windows: int

    @property
    def best(self) -> tuple[float, float]:
        """(threshold, normalised score) of the best threshold."""
        i = int(np.argmax(self.normalised))
        return float(self.thresholds[i]), float(self.normalised[i])


def nab_sweep(
    scores: Sequence[Any],
    windows: Sequence[Sequence[Sequence[int]]],
    profile: NABProfile | str = "standard",
    *,
    probation: float = PROBATION_PERCENT,
) -> NABSweep:
    """NAB's threshold optimisation: the corpus score at every distinct score value used as the threshold.

    Inside a window only the earliest detection counts, so as the threshold falls a window's worth changes
    only when a new running maximum of its scores (from the window's start) is passed.
    """
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    ev_t: list[np.ndarray] = []
    ev_d: list[np.ndarray] = []
    n_windows = 0
    for s_raw, w in zip(scores, windows, strict=True):
        s = np.asarray(s_raw, dtype=np.float64).ravel()
        if not np.isfinite(s).all():
            raise InputError("scores contain NaN or inf; the NAB sweep needs finite scores")
        pts = _points(s.size, w, prof, probation)
        n_windows += pts.n_windows
        sc = s[pts.index]
        out = pts.window < 0
        ev_t.append(sc[out])
        ev_d.append(pts.value[out])
        for k in range(pts.n_windows):
            idx = np.flatnonzero(pts.window == k)
            run = np.maximum.accumulate(sc[idx])
            rec = np.flatnonzero(np.r_[True, run[1:] > run[:-1]])  # new running maxima
            vals = pts.value[idx[rec]]
            after = np.r_[vals[1:], -prof.fn]  # worth before passing this record (next record, or a miss)
            ev_t.append(run[rec])
            ev_d.append(vals - after)
    t = np.concatenate(ev_t) if ev_t else np.empty(0)
    d = np.concatenate(ev_d) if ev_d else np.empty(0)
    order = np.argsort(-t, kind="stable")
    t, d = t[order], d[order]
    total = -prof.fn * n_windows + np.cumsum(d)
    last = np.r_[np.flatnonzero(np.diff(t) != 0), t.size - 1] if t.size else np.empty(0, dtype=np.int64)
    thr = np.r_[np.inf, t[last]]
    raw = np.r_[-prof.fn * n_windows, total[last]]
    norm = np.array([normalise(r, n_windows, prof) for r in raw]) if n_windows else np.zeros_like(raw)
    return NABSweep(thr, raw, norm, n_windows)


def load_profiles(path: Any) -> dict[str, NABProfile]:
    """Profiles from a NAB ``config/profiles.json``."""
    import json
    from pathlib import Path

    data = json.loads(Path(path).read_text())
    return {name: NABProfile.from_cost_matrix(p["CostMatrix"]) for name, p in data.items()}
