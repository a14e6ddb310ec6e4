"""SPOT and DSPOT (Siffer et al., KDD 2017): the extreme-value threshold, updated as the stream goes.

SPOT fits a generalised Pareto tail to the excesses of initial normal scores over a high quantile ``t``
(the GPD fit of :mod:`anomalia.scoring.pot`) and flags a new score above the threshold ``z_q`` exceeded with
probability ``risk``. A new score between ``t`` and ``z_q`` is a new peak: the tail is refitted and
``z_q`` moves. Flagged scores are not learned from. DSPOT does the same on the score minus the mean of the
last ``depth`` normal scores, so a drifting level does not raise alarms by itself.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .._core import InputError, ParameterError, ThresholdError
from .pot import MIN_PEAKS, GPDTail, fit_excesses


@dataclass(frozen=True)
class StreamResult:
    """Per-step flags and the threshold each step was compared with (in score units)."""

    flags: np.ndarray
    thresholds: np.ndarray


class SPOT:
    """Streaming POT threshold; ``depth`` > 0 makes it DSPOT (drift-corrected).

    Parameters
    ----------
    risk : float
        Probability that a normal score exceeds the threshold (the false-alarm rate per step).
    level : float
        Quantile of the initial scores above which scores are peaks (0.98 in the paper).
    depth : int
        DSPOT's moving-average length; 0 = plain SPOT.
    refit_every : int
        Refit the tail after this many new peaks (1 = after each one, as in the paper; larger is faster).
    """

    def __init__(self, risk: float = 1e-4, level: float = 0.98, depth: int = 0, refit_every: int = 1) -> None:
        if not 0.0 < risk < 1.0:
            raise ParameterError(f"SPOT(risk=...) must be in (0, 1); got {risk!r}")
        if not 0.0 < level < 1.0:
            raise ParameterError(f"SPOT(level=...) must be in (0, 1); got {level!r}")
        if depth < 0 or refit_every < 1:
            raise ParameterError(f"SPOT needs depth >= 0 and refit_every >= 1; got {depth!r}, {refit_every!r}")
        self.risk = risk
        self.level = level
        self.depth = depth
        self.refit_every = refit_every

    def _drift(self, x: np.ndarray) -> np.ndarray:
        c = np.cumsum(np.r_[0.0, x])
        d = self.depth
        return x[d:] - (c[d:-1] - c[: -d - 1]) / d

    def fit(self, scores: np.ndarray) -> SPOT:
        """Initialise on normal scores (calibration data)."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        if not np.isfinite(s).all():
            raise InputError("SPOT.fit: scores contain NaN or inf")
        if s.size <= self.depth:
            raise InputError(f"SPOT.fit needs more than depth={self.depth} scores; got {s.size}")
        x = self._drift(s) if self.depth else s
        self.initial_ = float(np.quantile(x, self.level))
        peaks = x[x > self.initial_] - self.initial_
        if peaks.size < MIN_PEAKS:
            raise ThresholdError(
                f"SPOT needs at least {MIN_PEAKS} initial scores above the {self.level:.0%} quantile; got {peaks.size} "
                f"from {x.size} scores. Initialise on more normal scores or lower level"
            )
        self.peaks_ = list(peaks)
        self.n_ = int(x.size)
        self.window_ = deque(s[-self.depth :].tolist() if self.depth else [], maxlen=self.depth or None)
        self._new_peaks = 0
        self._refit()
        return self

    def _refit(self) -> None:
        gamma, sigma = fit_excesses(np.asarray(self.peaks_))
        tail = GPDTail(self.initial_, gamma, sigma, len(self.peaks_) / self.n_)
        self.threshold_ = float(tail.quantile(self.risk))

    def run(self, scores: np.ndarray) -> StreamResult:
        """Flag each new score and update the threshold (state carries over to the next call)."""
        if not hasattr(self, "threshold_"):
            raise ThresholdError("SPOT is not initialised; call fit(initial_normal_scores) first")
        s = np.asarray(scores, dtype=np.float64).ravel()
        flags = np.zeros(s.size, dtype=bool)
        thr = np.empty(s.size)
        for i, v in enumerate(s):
            level = float(np.mean(self.window_)) if self.depth else 0.0
            x = v - level
            thr[i] = self.threshold_ + level
            if x > self.threshold_:
                flags[i] = True
                continue
            if x > self.initial_:
                self.peaks_.append(x - self.initial_)
                self.n_ += 1
                self._new_peaks += 1
                if self._new_peaks >= self.refit_every:
                    self._new_peaks = 0
                    self._refit()
            else:
                self.n_ += 1
            if self.depth:
                self.window_.append(v)
        return StreamResult(flags, thr)
