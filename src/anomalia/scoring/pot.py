"""Peaks over threshold: the extreme-value threshold of Siffer et al. (KDD 2017).

Above a high initial quantile ``t``, excesses of normal scores follow a generalised Pareto distribution
(Pickands–Balkema–de Haan). Fitting it lets a threshold be set for a risk far smaller than ``1 / n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .._core import ThresholdError

MIN_PEAKS = 10


@dataclass(frozen=True)
class GPDTail:
    """A fitted tail: initial threshold, GPD shape ``gamma`` and scale ``sigma``, share of peaks."""

    initial: float
    gamma: float
    sigma: float
    peak_share: float  # N_t / n

    def quantile(self, risk: float) -> float:
        """The score exceeded with probability ``risk`` (the POT threshold ``z_q``)."""
        r = risk / self.peak_share
        if abs(self.gamma) < 1e-8:
            return self.initial - self.sigma * math.log(r)
        return self.initial + self.sigma / self.gamma * (r ** (-self.gamma) - 1.0)


def fit_tail(scores: np.ndarray, level: float = 0.98) -> GPDTail:
    """Fit a GPD to the excesses of ``scores`` over their ``level`` quantile (maximum likelihood)."""
    s = np.asarray(scores, dtype=np.float64)
    t = float(np.quantile(s, level))
    peaks = s[s > t] - t
    if peaks.size < MIN_PEAKS:
        need = math.ceil(MIN_PEAKS / (1.0 - level))
        raise ThresholdError(
            f"POT needs at least {MIN_PEAKS} scores above the {level:.0%} quantile, i.e. about {need} normal "
            f"scores; got {s.size} scores with {peaks.size} peaks. Use more calibration data or false-alarm:alpha"
        )
    gamma, sigma = fit_excesses(peaks)
    return GPDTail(t, gamma, sigma, peaks.size / s.size)


def fit_excesses(excesses: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood GPD shape ``gamma`` and scale ``sigma`` of positive excesses (location 0)."""
    if np.ptp(excesses) == 0:
        return 0.0, float(np.mean(excesses)) or 1e-12
    gamma, _, sigma = stats.genpareto.fit(excesses, floc=0.0)
    return float(gamma), float(sigma)
