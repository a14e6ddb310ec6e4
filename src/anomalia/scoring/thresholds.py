"""Thresholds: objects fitted on scores (and labels where they need them) that turn scores into decisions.

Every threshold flags ``score > threshold_``. The spec strings (``"false-alarm:0.01"``, ``"pot:1e-4"``,
``"best-f1"``, ...) are what the command line and config files use; saved models keep
:meth:`~Threshold.to_dict`, which holds every parameter (``POT(1e-3, level=0.9)`` keeps its level).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .._core import ParameterError, ThresholdError
from .base import SPEC_ALIASES, THRESHOLDS, Threshold, check_unit, parse_threshold
from .pot import fit_tail
from .spot import SPOT

__all__ = [
    "POT",
    "SPEC_ALIASES",
    "SPOT",
    "THRESHOLDS",
    "BestF1",
    "Contamination",
    "FalseAlarmRate",
    "Fixed",
    "Quantile",
    "Sweep",
    "TargetPrecision",
    "TargetRecall",
    "Threshold",
    "parse_threshold",
    "sweep",
]

log = logging.getLogger(__name__)


class FalseAlarmRate(Threshold):
    """Flag conformal ``p <= alpha``: at most ``alpha`` of normal data is flagged (default 0.01)."""

    name = "false-alarm"
    arg_name = "alpha"
    value_optional = True

    def __init__(self, alpha: float = 0.01) -> None:
        check_unit(type(self).__name__, "alpha", alpha)
        self.alpha = alpha

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        desc = np.sort(s)[::-1]
        k = math.floor(self.alpha * (s.size + 1)) - 1  # flag when at most k calibration scores are >= s
        self.info_["achievable_alpha"] = 1.0 / (s.size + 1)
        if k < 0:
            log.warning(
                "false-alarm:%g needs at least %d calibration scores; got %d, so the threshold is the largest "
                "calibration score (false-alarm rate about %.3g)",
                self.alpha,
                math.ceil(1 / self.alpha) - 1,
                s.size,
                1.0 / (s.size + 1),
            )
            return float(desc[0])
        return float(desc[k])


class Quantile(Threshold):
    """Flag scores above the ``q`` quantile of the fitted scores."""

    name = "quantile"
    arg_name = "q"

    def __init__(self, q: float) -> None:
        check_unit(type(self).__name__, "q", q)
        self.q = q

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        return float(np.quantile(s, self.q))


class Contamination(Threshold):
    """Flag the top ``contamination`` share of the fitted scores (``Quantile(1 - contamination)``)."""

    name = "contamination"
    arg_name = "contamination"

    def __init__(self, contamination: float) -> None:
        check_unit(type(self).__name__, "contamination", contamination)
        self.contamination = contamination

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        return float(np.quantile(s, 1.0 - self.contamination))


class Fixed(Threshold):
    """A threshold given by the user; ``fit`` only records it."""

    name = "fixed"
    arg_name = "value"

    def __init__(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ParameterError(f"Fixed(value=...) must be a finite number; got {value!r}")
        self.value = float(value)

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        return self.value


class POT(Threshold):
    """Peaks over threshold: the score a normal row exceeds with probability ``risk`` (GPD tail fit).

    Parameters
    ----------
    risk : float
        Probability that a normal score exceeds the threshold (the false-alarm rate); the spec's value.
    level : float
        Quantile of the scores above which they are peaks (the start of the fitted tail).
    """

    name = "pot"
    arg_name = "risk"
    value_optional = True

    def __init__(self, risk: float = 1e-4, level: float = 0.98) -> None:
        check_unit(type(self).__name__, "risk", risk)
        check_unit(type(self).__name__, "level", level)
        self.risk = risk
        self.level = level

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        tail = fit_tail(s, self.level)
        self.info_.update(initial=tail.initial, gamma=tail.gamma, sigma=tail.sigma)
        if self.risk >= tail.peak_share:  # not in the tail: the empirical quantile is exact enough
            return float(np.quantile(s, 1.0 - self.risk))
        return tail.quantile(self.risk)


@dataclass(frozen=True)
class Sweep:
    """Precision and recall when flagging ``score > thresholds[i]``, one entry per distinct score."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)


def sweep(scores: np.ndarray, y: np.ndarray) -> Sweep:
    """Every distinct operating point of ``scores`` against labels ``y``, from strictest to loosest."""
    order = np.argsort(-scores, kind="stable")
    s, lab = scores[order], y[order]
    tp, fp = np.cumsum(lab), np.cumsum(1 - lab)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each distinct score
    thr = np.nextafter(s[last], -np.inf)  # flag score > thr  <=>  score >= s[last]
    return Sweep(thr, tp[last] / (tp[last] + fp[last]), tp[last] / max(int(lab.sum()), 1))


class _Labelled(Threshold):
    needs_labels = True

    def _pick(self, sw: Sweep) -> int:
        raise NotImplementedError

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        assert y is not None
        sw = sweep(s, y)
        i = self._pick(sw)
        self.info_.update(precision=float(sw.precision[i]), recall=float(sw.recall[i]), f1=float(sw.f1[i]))
        return float(sw.thresholds[i])


class BestF1(_Labelled):
    """The threshold with the highest F1 on a labelled validation set."""

    name = "best-f1"

    def _pick(self, sw: Sweep) -> int:
        return int(np.argmax(sw.f1))


class TargetPrecision(_Labelled):
    """The highest recall whose precision is at least ``precision`` on a labelled validation set."""

    name = "precision"
    arg_name = "precision"

    def __init__(self, precision: float) -> None:
        check_unit(type(self).__name__, "precision", precision)
        self.precision = precision

    def _pick(self, sw: Sweep) -> int:
        ok = np.flatnonzero(sw.precision >= self.precision)
        if ok.size == 0:
            b = int(np.argmax(sw.precision))
            raise ThresholdError(
                f"no threshold reaches precision {self.precision:g} on this validation set; the best is "
                f"{sw.precision[b]:.3f} (recall {sw.recall[b]:.3f}). Lower the target or use more data"
            )
        return int(ok[np.argmax(sw.recall[ok])])


class TargetRecall(_Labelled):
    """The highest precision whose recall is at least ``recall`` on a labelled validation set."""

    name = "recall"
    arg_name = "recall"

    def __init__(self, recall: float) -> None:
        check_unit(type(self).__name__, "recall", recall)
        self.recall = recall

    def _pick(self, sw: Sweep) -> int:
        ok = np.flatnonzero(sw.recall >= self.recall)
        return int(ok[np.argmax(sw.precision[ok])])


