"""Thresholds: objects fitted on scores (and labels where they need them) that turn scores into decisions.

Every threshold flags ``score > threshold_``. The spec strings (``"false-alarm:0.01"``, ``"pot:1e-4"``,
``"best-f1"``, ...) are what the command line, config files and saved models use.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._core import InputError, NotFittedError, ParameterError, ThresholdError, check_labels
from .pot import fit_tail

log = logging.getLogger(__name__)


class Threshold:
    """Base class. Subclasses set ``name`` and implement ``_fit``; ``arg`` is their one argument."""

    name: ClassVar[str]
    needs_labels: ClassVar[bool] = False
    arg_name: ClassVar[str | None] = None

    def __init__(self, arg: float | None = None) -> None:
        self.arg = arg
        self._check_arg()

    def _check_arg(self) -> None:
        a = self.arg
        if self.arg_name is not None and not (isinstance(a, int | float) and 0.0 < a < 1.0):
            raise ParameterError(f"{type(self).__name__}({self.arg_name}=...) must be a number in (0, 1); got {a!r}")

    @property
    def spec(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg:g}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'' if self.arg is None else repr(self.arg)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Threshold) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def fit(self, scores: Any, y: Any = None) -> Threshold:
        """Fit on ``scores`` (held-out normal scores, or a labelled validation set's scores with ``y``)."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        if s.size == 0:
            raise InputError(f"{self.spec}: scores is empty; fit the threshold on at least one score")
        if not np.isfinite(s).all():
            raise InputError(f"{self.spec}: scores contain NaN or inf; score finite data")
        labels = None
        if self.needs_labels:
            labels = check_labels(y, s.size)
            n_anom = int(labels.sum())
            if n_anom == 0:
                raise ThresholdError(
                    f"threshold '{self.spec}' needs labelled anomalies, but the validation set of {s.size} rows has "
                    "none (all labels are 0). Add labelled anomalies, or use 'false-alarm:ALPHA', which needs "
                    "only normal data"
                )
            if n_anom == s.size:
                raise ThresholdError(f"threshold '{self.spec}' needs normal rows too; all {s.size} labels are 1")
        self.info_: dict[str, float] = {}
        self.threshold_ = float(self._fit(s, labels))
        return self

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        raise NotImplementedError

    def predict(self, scores: Any) -> np.ndarray:
        """Boolean flags: ``scores > threshold_``."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"threshold '{self.spec}' is not fitted; call fit(scores) first")
        return np.asarray(scores, dtype=np.float64) > self.threshold_

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"spec": self.spec}
        if hasattr(self, "threshold_"):
            d["threshold"] = self.threshold_
            d["info"] = self.info_
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Threshold:
        t = parse_threshold(d["spec"])
        if "threshold" in d:
            t.threshold_ = float(d["threshold"])
            t.info_ = dict(d.get("info", {}))
        return t


class FalseAlarmRate(Threshold):
    """Flag conformal ``p <= alpha``: at most ``alpha`` of normal data is flagged (default 0.01)."""

    name = "false-alarm"
    arg_name = "alpha"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__(alpha)

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        desc = np.sort(s)[::-1]
        k = math.floor(self.arg * (s.size + 1)) - 1  # flag when at most k calibration scores are >= s
        self.info_["achievable_alpha"] = 1.0 / (s.size + 1)
        if k < 0:
            log.warning(
                "false-alarm:%g needs at least %d calibration scores; got %d, so the threshold is the largest "
                "calibration score (false-alarm rate about %.3g)",
                self.arg,
                math.ceil(1 / self.arg) - 1,
                s.size,
                1.0 / (s.size + 1),
            )
            return float(desc[0])
        return float(desc[k])


class Quantile(Threshold):
    """Flag scores above the ``q`` quantile of the fitted scores."""

    name = "quantile"
    arg_name = "q"

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        return float(np.quantile(s, self.arg))


class Contamination(Threshold):
    """Flag the top ``contamination`` share of the fitted scores (``Quantile(1 - contamination)``)."""

    name = "contamination"
    arg_name = "contamination"

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        return float(np.quantile(s, 1.0 - self.arg))


class Fixed(Threshold):
    """A threshold given by the user; ``fit`` only records it."""

    name = "fixed"

    def __init__(self, value: float) -> None:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ParameterError(f"Fixed(value=...) must be a finite number; got {value!r}")
        super().__init__(float(value))

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        return float(self.arg)


class POT(Threshold):
    """Peaks over threshold: the score a normal row exceeds with probability ``risk`` (GPD tail fit)."""

    name = "pot"
    arg_name = "risk"

    def __init__(self, risk: float = 1e-4, level: float = 0.98) -> None:
        self.level = level
        super().__init__(risk)

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        tail = fit_tail(s, self.level)
        self.info_.update(initial=tail.initial, gamma=tail.gamma, sigma=tail.sigma)
        if self.arg >= tail.peak_share:  # not in the tail: the empirical quantile is exact enough
            return float(np.quantile(s, 1.0 - self.arg))
        return tail.quantile(self.arg)


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

    def __init__(self) -> None:
        super().__init__(None)

    def _pick(self, sw: Sweep) -> int:
        return int(np.argmax(sw.f1))


class TargetPrecision(_Labelled):
    """The highest recall whose precision is at least ``precision`` on a labelled validation set."""

    name = "precision"
    arg_name = "precision"

    def _pick(self, sw: Sweep) -> int:
        ok = np.flatnonzero(sw.precision >= self.arg)
        if ok.size == 0:
            b = int(np.argmax(sw.precision))
            raise ThresholdError(
                f"no threshold reaches precision {self.arg:g} on this validation set; the best is "
                f"{sw.precision[b]:.3f} (recall {sw.recall[b]:.3f}). Lower the target or use more data"
            )
        return int(ok[np.argmax(sw.recall[ok])])


class TargetRecall(_Labelled):
    """The highest precision whose recall is at least ``recall`` on a labelled validation set."""

    name = "recall"
    arg_name = "recall"

    def _pick(self, sw: Sweep) -> int:
        ok = np.flatnonzero(sw.recall >= self.arg)
        return int(ok[np.argmax(sw.precision[ok])])


THRESHOLDS: dict[str, type[Threshold]] = {
    cls.name: cls
    for cls in (FalseAlarmRate, Quantile, Contamination, Fixed, POT, BestF1, TargetPrecision, TargetRecall)
}


def parse_threshold(spec: str | Threshold) -> Threshold:
    """A fresh, unfitted threshold from ``"name[:value]"`` (e.g. ``"false-alarm:0.05"``) or a copy of one."""
    if isinstance(spec, Threshold):
        return parse_threshold(spec.spec)
    if not isinstance(spec, str):
        raise ParameterError(f"threshold must be a spec string like 'false-alarm:0.01' or a Threshold; got {spec!r}")
    name, _, value = spec.strip().partition(":")
    if name not in THRESHOLDS:
        raise ParameterError(f"unknown threshold {name!r} in {spec!r}; choose one of {sorted(THRESHOLDS)}")
    cls = THRESHOLDS[name]
    if cls is BestF1:
        if value:
            raise ParameterError(f"threshold 'best-f1' takes no value; got {spec!r}")
        return cls()
    if not value:
        if cls in (FalseAlarmRate, POT):
            return cls()
        raise ParameterError(f"threshold {name!r} needs a value, e.g. '{name}:0.9'; got {spec!r}")
    try:
        num = float(value)
    except ValueError:
        raise ParameterError(f"threshold value in {spec!r} must be a number; got {value!r}") from None
    return cls(num)
