"""SPOT and DSPOT (Siffer et al., KDD 2017): the extreme-value threshold, updated as the stream goes.

SPOT fits a generalised Pareto tail to the excesses of initial normal scores over a high quantile ``t``
(the GPD fit of :mod:`anomalia.scoring.pot`) and flags a new score above the threshold ``z_q`` exceeded with
probability ``risk``. A new score between ``t`` and ``z_q`` is a new peak: the tail is refitted and
``z_q`` moves. Flagged scores are not learned from. DSPOT does the same on the score minus the mean of the
last ``depth`` normal scores, so a drifting level does not raise alarms by itself.

What the stream has taught the threshold is a small :class:`SPOTState`. :meth:`SPOT.step` is pure (it
returns a new state and changes neither the SPOT nor the state it got), so one fitted SPOT serves many
streams, each with its own state; :meth:`SPOT.run` steps the SPOT's own state.
"""

from __future__ import annotations

import numbers
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._core import InputError, ParameterError, ThresholdError
from .base import Threshold, check_unit
from .pot import MIN_PEAKS, GPDTail, fit_excesses


@dataclass(frozen=True)
class StreamResult:
    """Per-step flags and the threshold each step was compared with (in score units)."""

    flags: np.ndarray
    thresholds: np.ndarray


def _frozen(values: Any) -> np.ndarray:
    a = np.array(values, dtype=np.float64).ravel()
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class SPOTState:
    """Where a stream stands: what SPOT has learned from it so far.

    Attributes
    ----------
    initial : float
        The initial threshold ``t`` (the ``level`` quantile at fit, in drift-corrected units for DSPOT).
    peaks : ndarray
        Excesses over ``initial`` of every peak so far (float64, read-only).
    n : int
        Scores learned from (initial ones included; flagged scores are not learned from).
    window : tuple of float
        DSPOT's last ``depth`` normal scores (empty for SPOT).
    new_peaks : int
        Peaks since the last tail refit.
    threshold : float
        The current threshold ``z_q`` (drift-corrected units for DSPOT).
    """

    initial: float
    peaks: np.ndarray
    n: int
    window: tuple[float, ...]
    new_peaks: int
    threshold: float

    def __post_init__(self) -> None:
        p = self.peaks
        if not (isinstance(p, np.ndarray) and p.dtype == np.float64 and p.ndim == 1 and not p.flags.writeable):
            object.__setattr__(self, "peaks", _frozen(self.peaks))
        if not isinstance(self.window, tuple):
            object.__setattr__(self, "window", tuple(self.window))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SPOTState)
            and (self.initial, self.n, self.window, self.new_peaks, self.threshold)
            == (other.initial, other.n, other.window, other.new_peaks, other.threshold)
            and np.array_equal(self.peaks, other.peaks)
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (plain floats, ints and lists)."""
        return {
            "initial": float(self.initial),
            "peaks": self.peaks.tolist(),
            "n": int(self.n),
            "window": [float(v) for v in self.window],
            "new_peaks": int(self.new_peaks),
            "threshold": float(self.threshold),
        }

    @classmethod
    def from_dict(cls, d: Any) -> SPOTState:
        """Rebuild from :meth:`to_dict`; raises :class:`~anomalia.InputError` on a damaged state."""
        keys = ("initial", "peaks", "n", "window", "new_peaks", "threshold")
        if not isinstance(d, dict) or any(k not in d for k in keys):
            got = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
            raise InputError(f"a SPOT state needs the keys {list(keys)}; got {got}")
        try:
            for k in ("initial", "threshold"):
                if isinstance(d[k], bool) or not isinstance(d[k], numbers.Real):
                    raise TypeError(k)
            for k in ("n", "new_peaks"):
                if isinstance(d[k], bool) or not isinstance(d[k], numbers.Integral) or d[k] < 0:
                    raise TypeError(k)
            peaks = _frozen(d["peaks"])
            window = tuple(float(v) for v in d["window"])
        except (TypeError, ValueError) as e:
            raise InputError(f"a SPOT state has a damaged {str(e) or 'entry'!s}: {d!r:.200}") from None
        if not np.isfinite(peaks).all() or not all(np.isfinite(window)) or peaks.size > int(d["n"]):
            raise InputError("a SPOT state has non-finite peaks or window values, or more peaks than scores")
        return cls(float(d["initial"]), peaks, int(d["n"]), window, int(d["new_peaks"]), float(d["threshold"]))


class SPOT(Threshold):
    """Streaming POT threshold; ``depth`` > 0 makes it DSPOT (drift-corrected).

    Spec ``"spot:RISK"``; ``"dspot:RISK"`` is ``SPOT(RISK, depth=10)``.

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

    Attributes
    ----------
    threshold_ : float
        The current threshold (drift-corrected units for DSPOT).
    state_ : SPOTState
        The SPOT's own stream state, which :meth:`run` advances; ``n_``, ``peaks_``, ``initial_`` and
        ``window_`` are its fields.
    info_ : dict
        The tail fitted at ``fit``: ``initial``, ``gamma``, ``sigma``.
    """

    name = "spot"
    value_optional = True
    arg_name = "risk"
    streaming: ClassVar[bool] = True

    def __init__(self, risk: float = 1e-4, level: float = 0.98, depth: int = 0, refit_every: int = 1) -> None:
        check_unit("SPOT", "risk", risk)
        check_unit("SPOT", "level", level)
        if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (depth, refit_every)) or (
            depth < 0 or refit_every < 1
        ):
            raise ParameterError(f"SPOT needs depth >= 0 and refit_every >= 1; got {depth!r}, {refit_every!r}")
        self.risk = risk
        self.level = level
        self.depth = int(depth)
        self.refit_every = int(refit_every)

    @property
    def spec(self) -> str:
        return f"{'dspot' if self.depth else 'spot'}:{self.risk:g}"

    # -- fitting ------------------------------------------------------------------------------------------
    def _drift(self, x: np.ndarray) -> np.ndarray:
        c = np.cumsum(np.r_[0.0, x])
        d = self.depth
        return x[d:] - (c[d:-1] - c[: -d - 1]) / d

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        if s.size <= self.depth:
            raise InputError(f"SPOT.fit needs more than depth={self.depth} scores; got {s.size}")
        x = self._drift(s) if self.depth else s
        initial = float(np.quantile(x, self.level))
        peaks = x[x > initial] - initial
        if peaks.size < MIN_PEAKS:
            raise ThresholdError(
                f"SPOT needs at least {MIN_PEAKS} initial scores above the {self.level:.0%} quantile; got {peaks.size} "
                f"from {x.size} scores. Initialise on more normal scores or lower level"
            )
        gamma, sigma = fit_excesses(peaks)
        threshold = self._quantile(initial, gamma, sigma, peaks.size, x.size)
        window = tuple(s[-self.depth :].tolist()) if self.depth else ()
        self._fit_state = SPOTState(initial, _frozen(peaks), int(x.size), window, 0, threshold)
        self.state_ = self._fit_state
        self.info_.update(initial=initial, gamma=gamma, sigma=sigma)
        return threshold

    def _quantile(self, initial: float, gamma: float, sigma: float, n_peaks: int, n: int) -> float:
        return float(GPDTail(initial, gamma, sigma, n_peaks / n).quantile(self.risk))

    def _check_fitted(self) -> None:
        if not hasattr(self, "state_"):
            raise ThresholdError("SPOT is not initialised; call fit(initial_normal_scores) first")

    def initial_state(self) -> SPOTState:
        """The state right after ``fit``: where each new stream starts."""
        self._check_fitted()
        return self._fit_state

    # -- the stream ---------------------------------------------------------------------------------------
    def step(self, scores: Any, state: SPOTState) -> tuple[StreamResult, SPOTState]:
        """Flag each new score against ``state`` and learn from it; returns the flags and the new state.

        Pure: neither this SPOT nor ``state`` changes, so one SPOT can step any number of streams.
        """
        if not isinstance(state, SPOTState):
            raise InputError(f"SPOT.step needs a SPOTState (e.g. spot.initial_state()); got {type(state).__name__}")
        s = np.asarray(scores, dtype=np.float64).ravel()
        flags = np.zeros(s.size, dtype=bool)
        thr = np.empty(s.size)
        depth, refit_every, initial = self.depth, self.refit_every, state.initial
        peaks: list[float] | None = None  # copied from the state at the first new peak, at most once
        window = deque(state.window, maxlen=depth or None)
        n, new_peaks, threshold = state.n, state.new_peaks, state.threshold
        for i, v in enumerate(s):
            level = float(np.mean(window)) if depth else 0.0
            x = v - level
            thr[i] = threshold + level
            if x > threshold:
                flags[i] = True
                continue
            n += 1
            if x > initial:
                if peaks is None:
                    peaks = state.peaks.tolist()
                peaks.append(x - initial)
                new_peaks += 1
                if new_peaks >= refit_every:
                    new_peaks = 0
                    gamma, sigma = fit_excesses(np.asarray(peaks))
                    threshold = self._quantile(initial, gamma, sigma, len(peaks), n)
            if depth:
                window.append(v)
        kept = state.peaks if peaks is None else _frozen(peaks)  # read-only, so an unchanged one is shared
        return StreamResult(flags, thr), SPOTState(initial, kept, n, tuple(window), new_peaks, threshold)

    def run(self, scores: Any) -> StreamResult:
        """Flag each new score and update the threshold (the SPOT's own state carries over to the next call)."""
        self._check_fitted()
        result, self.state_ = self.step(scores, self.state_)
        self.threshold_ = self.state_.threshold
        return result

    def predict(self, scores: Any) -> np.ndarray:
        """Flags against the current threshold (plus DSPOT's current level), learning nothing."""
        self._check_fitted()
        level = float(np.mean(self.state_.window)) if self.depth else 0.0
        return np.asarray(scores, dtype=np.float64) - level > self.state_.threshold

    @property
    def n_(self) -> int:
        return self.state_.n

    @property
    def peaks_(self) -> np.ndarray:
        return self.state_.peaks

    @property
    def initial_(self) -> float:
        return self.state_.initial

    @property
    def window_(self) -> tuple[float, ...]:
        return self.state_.window

    # -- JSON form ----------------------------------------------------------------------------------------
    def _state_to_dict(self) -> dict[str, Any]:
        return {"state": self.state_.to_dict(), "fit_state": self._fit_state.to_dict()}

    def _state_from_dict(self, d: dict[str, Any]) -> None:
        if "state" not in d or "fit_state" not in d:
            raise InputError(f"a saved fitted {self.spec!r} needs its 'state' and 'fit_state'; got keys {sorted(d)}")
        self._fit_state = SPOTState.from_dict(d["fit_state"])
        self.state_ = SPOTState.from_dict(d["state"])
        self.threshold_ = self.state_.threshold
