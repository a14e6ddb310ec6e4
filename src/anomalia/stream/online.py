"""Online decisions per key: a rolling conformal calibration set, streaming thresholds, moving-average
normalisation, drift on the p-values and rebaselining.

One model serves every key; what a key owns is a small :class:`KeyState`. Each point is decided against
the state left by the points before it, one point at a time, so the results do not depend on how the
stream was cut into batches (a restarted watcher that reads other batches gives the same scores).

For each point of a key, in order:

1. ``smoothing`` > 1: the score is replaced by its EWMA over the key's recent scores (the moving-average
   normalisation of Hundman et al. 2018; ``alpha = 2 / (span + 1)``).
2. p-value: conformal against the key's own rolling calibration set (its last ``window`` scores that were
   not flagged) once it holds ``min_calibration`` of them, against the model's held-out calibration scores
   before that.
3. decision: ``decide="conformal"`` flags ``p <= alpha``; ``"spot:RISK"`` / ``"dspot:RISK"`` step a per-key
   SPOT / DSPOT fitted once on the model's calibration scores; ``"model"`` uses the model's own threshold
   (a streaming one is stepped per key).
4. **protect**: a flagged point never enters the calibration set. The set still needs a tail: a share
   ``alpha`` of normal points lies beyond the flagging level, is flagged, and so never enters; without them
   the set's upper quantile falls each time the window turns over (a censored set; measured: 79 of 100 drift
   tests fired on 20,000 normal points). So after every ``(1 - alpha) / alpha``-th point that *entered*, the
   set takes one stand-in: a score from the tail beyond the flagging level, with the shape of the model's
   own held-out tail put on the key's scale (:meth:`Decider._stand_in`). The stand-ins' share of the set is
   then ``alpha`` whatever share of the points is flagged: extra flags (anomalies) only leave places
   empty, so they move neither the set's tail nor the threshold (a rule that gave a stand-in per flagged
   point put one in for every anomaly too, and moved the threshold by 72-829 % with 2 % injected
   anomalies). Stand-ins are scaled at the set's median and ``1 - TAIL * alpha`` quantile, well below the
   flagging level, so they never feed on each other; a sustained run of flags (a level shift, a long
   incident) lets nothing in, and protect stays locked until a drift is confirmed and the key is
   rebaselined, or the model absorbs the new normal.
5. drift: every ``drift_window`` p-values of the key are tested against the uniform law (a KS test at
   ``drift_level`` whose sample size is the window's effective one, :func:`anomalia.stream.drift.effective_size`,
   since the scores of neighbouring points are correlated); a drift is reported, and with
   ``adaptation="rebaseline"`` the calibration set restarts from the tested window (its points minus outliers
   by a robust rule: above median + 5 MAD), i.e. from the change point, and the key's p-values come from it
   at once (while it holds fewer than ``1 / alpha - 1`` scores nothing can be flagged, so the next points
   fill it).

The points of one key are decided in blocks (:meth:`Decider.decide`): the p-values of a run of points that
all enter the set are computed at once (each point against the set as the points before it left it), up to
the first point where something else happens (a flag, a stand-in, a NaN, a drift test), which is decided
alone; the results are those of the point-by-point rule (``pointwise=True``), bit for bit (tested).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._core import ParameterError
from ..detectors.stream_state import StreamState
from ..scoring import SPOT, SPOTState, Threshold, parse_threshold
from .drift import effective_size, ks_critical

DECIDE_HELP = "conformal (p <= alpha), spot:RISK, dspot:RISK, or model (the model's own threshold)"
ADAPTATIONS = ("protect", "absorb", "rebaseline")
#: Spreads the stand-ins over the tail beyond the flagging level (a low-discrepancy sequence).
GOLDEN = 0.6180339887498949
#: The stand-ins' scale is matched at the calibration set's ``1 - TAIL * alpha`` quantile.
TAIL = 10
#: Points decided together at most (a block's comparisons are block x (window + block)).
BLOCK = 64
#: Keys with at most this many points in a batch are decided in rounds across keys (:meth:`Decider.decide_many`).
SMALL = 4
DRIFT_POLICIES = ("alert", "adapt")


@dataclass
class Online:
    """Online decision settings shared by every key (see the module docstring).

    Defaults: ``alpha=0.01`` is the default false-alarm rate of a fitted model; ``window=500`` gives
    p-values a resolution of 0.002 (so ``p <= 0.01`` can happen) at 4 kB per key; ``min_calibration=100``
    is the smallest set on which ``p <= 0.01`` is reachable; ``drift_window=200`` / ``drift_level=1e-3``
    give at most one false drift per 200,000 points of a key on independent scores (on normal stretches of
    real series about one per 1,000: see benchmarks/RESULTS.md). None was tuned on labels.
    """

    decide: str = "conformal"
    alpha: float = 0.01
    window: int = 500
    min_calibration: int = 100
    smoothing: int = 0
    drift_window: int = 200
    drift_level: float = 1e-3
    drift_policy: str = "alert"
    adaptation: str = "protect"

    def check(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ParameterError(f"--alpha must lie in (0, 1); got {self.alpha}")
        if self.window < 2 or self.min_calibration < 1 or self.min_calibration > self.window:
            raise ParameterError(
                f"--window must be >= 2 and --min-calibration in [1, window]; got window={self.window}, "
                f"min_calibration={self.min_calibration}"
            )
        if self.alpha * (self.min_calibration + 1) < 1:
            need = int(np.ceil(1 / self.alpha)) - 1
            raise ParameterError(
                f"--alpha {self.alpha:g} cannot be reached: a key's p-values are at least 1 / (its scores + 1), "
                f"so it needs --min-calibration (and --window) of at least {need}; got {self.min_calibration}"
            )
        if self.smoothing < 0:
            raise ParameterError(f"--smoothing must be >= 0 (an EWMA span; 0 = none); got {self.smoothing}")
        if self.drift_window < 0 or not 0.0 < self.drift_level < 1.0:
            raise ParameterError(
                f"--drift-window must be >= 0 (0 = no drift test) and --drift-level in (0, 1); got "
                f"{self.drift_window}, {self.drift_level}"
            )
        if self.drift_policy not in DRIFT_POLICIES:
            raise ParameterError(f"--drift must be one of {list(DRIFT_POLICIES)}; got {self.drift_policy!r}")
        if self.adaptation not in ADAPTATIONS:
            raise ParameterError(f"--adapt must be one of {list(ADAPTATIONS)}; got {self.adaptation!r}")
        if self.decide not in ("conformal", "model"):
            rule = _parse_decide(self.decide)
            if not rule.streaming:
                raise ParameterError(f"--decide must be {DECIDE_HELP}; got {self.decide!r}")


def _parse_decide(spec: str) -> Threshold:
    try:
        return parse_threshold(spec)
    except (ParameterError, ValueError):
        raise ParameterError(f"--decide must be {DECIDE_HELP}; got {spec!r}") from None


@dataclass
class KeyState:
    """What one key owns: its rolling calibration set, EWMA, threshold and drift window, counters and, for
    series models, the detector's :class:`~anomalia.StreamState` (context window).

    ``ring`` holds up to ``window`` calibration scores in a circular buffer (``count`` valid, next write at
    ``pos``), ``stand_in`` marks the entries that are tail stand-ins, ``entered`` counts the scores that
    entered since the set (re)started (a stand-in follows every ``(1 - alpha) / alpha``-th); ``drift`` the
    p-values (row 0) and scores (row 1) of the current drift window, ``drift_n`` of them so far.
    """

    ring: np.ndarray
    stand_in: np.ndarray
    count: int = 0
    pos: int = 0
    ewma: float | None = None
    spot: SPOTState | None = None
    drift: np.ndarray = field(default_factory=lambda: np.zeros((2, 1)))
    drift_n: int = 0
    n: int = 0
    n_flagged: int = 0
    n_drifts: int = 0
    series: StreamState | None = None
    rebased: bool = False
    entered: int = 0

    # --------------------------------------------------------------- storage
    def dumps(self) -> tuple[str, bytes]:
        """``(json, bytes)``: the exact state (floats round-trip); the arrays go to the bytes."""
        n = max(self.count, self.pos)
        if self.spot is None and self.series is None:  # the common case, written as json.dumps would
            e = self.ewma
            ewma = "null" if e is None else repr(float(e)) if math.isfinite(e) else json.dumps(float(e))
            text = (
                f'{{"count":{self.count},"pos":{self.pos},"ring":{n},"drift":{self.drift_n},"ewma":{ewma},'
                f'"spot":null,"n":{self.n},"n_flagged":{self.n_flagged},"n_drifts":{self.n_drifts},'
                f'"rebased":{"true" if self.rebased else "false"},"entered":{self.entered},"series":null}}'
            )
        else:
            text = json.dumps(self._meta(n), separators=(",", ":"))
        blob = b"".join(
            (
                self.ring[:n].tobytes(),
                self.stand_in[:n].tobytes(),
                self.drift[0, : self.drift_n].tobytes(),
                self.drift[1, : self.drift_n].tobytes(),
            )
        )
        return text, blob

    def _meta(self, n: int) -> dict[str, Any]:
        return {
            "count": self.count,
            "pos": self.pos,
            "ring": n,
            "drift": self.drift_n,
            "ewma": self.ewma,
            "spot": None if self.spot is None else self.spot.to_dict(),
            "n": self.n,
            "n_flagged": self.n_flagged,
            "n_drifts": self.n_drifts,
            "rebased": self.rebased,
            "entered": self.entered,
            "series": None if self.series is None else self.series.to_dict(),
        }

    @classmethod
    def loads(cls, meta_text: str, blob: bytes, window: int, drift_window: int) -> KeyState:
        meta = json.loads(meta_text)
        n, m = int(meta["ring"]), int(meta["drift"])
        ring = np.zeros(window, dtype=np.float64)
        ring[:n] = np.frombuffer(blob, dtype=np.float64, count=n)
        mask = np.zeros(window, dtype=bool)
        mask[:n] = np.frombuffer(blob, dtype=np.bool_, count=n, offset=8 * n)
        drift = np.zeros((2, max(drift_window, 1)), dtype=np.float64)
        drift[0, :m] = np.frombuffer(blob, dtype=np.float64, count=m, offset=9 * n)
        drift[1, :m] = np.frombuffer(blob, dtype=np.float64, count=m, offset=9 * n + 8 * m)
        return cls(
            ring,
            mask,
            int(meta["count"]),
            int(meta["pos"]),
            meta["ewma"],
            None if meta["spot"] is None else SPOTState.from_dict(meta["spot"]),
            drift,
            m,
            int(meta["n"]),
            int(meta["n_flagged"]),
            int(meta["n_drifts"]),
            None if meta["series"] is None else StreamState.from_dict(meta["series"]),
            bool(meta.get("rebased", False)),
            int(meta.get("entered", 0)),
        )

    def calibration(self) -> np.ndarray:
        """The key's calibration scores (in no particular order)."""
        return self.ring[: self.count]

    def restart(self, scores: np.ndarray) -> None:
        """Restart the calibration set from ``scores`` (the newest last)."""
        s = np.asarray(scores, dtype=np.float64)[-self.ring.size :]
        self.ring[:] = 0.0
        self.ring[: s.size] = s
        self.stand_in[:] = False
        self.count, self.pos = int(s.size), int(s.size) % self.ring.size
        self.entered = 0
        self.rebased = True  # its own scores from now on, even while fewer than min_calibration


@dataclass(frozen=True)
class Decisions:
    """Per point: the (smoothed) score, its p-value, the decision, and the drifts found (point positions)."""

    score: np.ndarray
    p_value: np.ndarray
    is_anomaly: np.ndarray
    drifts: list[dict[str, Any]]


class Decider:
    """Applies :class:`Online` to keys' states (one shared object; the states are the caller's).

    Parameters
    ----------
    online : Online
        The settings.
    calibration_scores : ndarray
        The model's held-out calibration scores (p-values of keys still warming up, SPOT's initial fit).
    model_threshold : Threshold
        The model's fitted threshold (``decide="model"``).
    drift_stride : int
        Test every ``drift_stride``-th p-value only. The KS test assumes independent p-values; the scores of a
        series detector at neighbouring steps share most of their window, so the watcher thins them by the
        detector's span (on a sine wave the unthinned test fired in most windows).
    """

    def __init__(
        self,
        online: Online,
        calibration_scores: np.ndarray,
        model_threshold: Threshold | None,
        *,
        drift_stride: int = 1,
    ) -> None:
        online.check()
        self.online = online
        self.stride = max(1, int(drift_stride))
        self.cal = np.sort(np.asarray(calibration_scores, dtype=np.float64))
        self.spot: SPOT | None = None
        self.fixed: Threshold | None = None
        if online.decide == "model":
            if model_threshold is None:
                raise ParameterError("--decide model needs a model with a fitted threshold; use --decide conformal")
            if model_threshold.streaming:
                self.spot = model_threshold  # type: ignore[assignment]
            else:
                self.fixed = model_threshold
        elif online.decide != "conformal":
            rule = _parse_decide(online.decide)
            base = self.cal
            if online.smoothing > 1:  # the SPOT learns the smoothed scale the stream is decided on
                from ..scoring import ewma

                base = ewma(np.asarray(calibration_scores, dtype=np.float64), online.smoothing)
            rule.fit(base)
            self.spot = rule  # type: ignore[assignment]
        self.crit = ks_critical(online.drift_window, online.drift_level) if online.drift_window else math.inf
        self._crit: dict[int, float] = {}
        #: A stand-in follows every ``every``-th score that entered: a share ``alpha`` of the set.
        self.every = max(1, round((1.0 - online.alpha) / online.alpha))
        self._a = 2.0 / (online.smoothing + 1.0) if online.smoothing > 1 else 0.0

    def new_state(self, series: StreamState | None = None) -> KeyState:
        spot = None if self.spot is None else self.spot.initial_state()
        w = self.online.window
        drift = np.zeros((2, max(self.online.drift_window, 1)), dtype=np.float64)
        return KeyState(np.zeros(w, dtype=np.float64), np.zeros(w, dtype=bool), drift=drift, spot=spot, series=series)

    def decide(self, state: KeyState, raw: np.ndarray, *, pointwise: bool = False) -> Decisions:
        """Decide the new points of one key (``raw`` model scores, in order); ``state`` is updated in place.

        ``pointwise=True`` decides one point at a time (the reference rule); the default decides runs of
        points at once with the same results (see the module docstring).
        """
        raw = np.asarray(raw, dtype=np.float64)
        n = raw.size
        if self._a:
            a, e = self._a, state.ewma
            scores = np.empty(n)
            for i in range(n):
                e = raw[i] if e is None else a * raw[i] + (1.0 - a) * e
                scores[i] = e
            state.ewma = e
        else:
            scores = raw.copy()
        spot_flags = None
        if self.spot is not None:  # sequential inside; flags do not depend on the ring
            result, state.spot = self.spot.step(scores, state.spot)
            spot_flags = np.asarray(result.flags, dtype=bool)
        elif self.fixed is not None:
            spot_flags = np.asarray(self.fixed.predict(scores), dtype=bool)
        p = np.ones(n)
        flags = np.zeros(n, dtype=bool)
        drifts: list[dict[str, Any]] = []
        if pointwise:
            for i in range(n):
                self._point(state, i, scores, spot_flags, p, flags, drifts)
        else:
            self._blocks(state, scores, spot_flags, p, flags, drifts)
        state.n += n
        state.n_flagged += int(flags.sum())
        return Decisions(scores, p, flags, drifts)

    def decide_many(self, states: list[KeyState], raws: list[np.ndarray]) -> Decisions:
        """:meth:`decide` for several keys at once, with the same results.

        ``raws[j]`` are the new points of the key whose state is ``states[j]``, in order. The result covers
        the points of every key one after the other (``raws`` concatenated); each drift carries ``key``
        (its index ``j``) and ``point`` (its position among that key's points). Keys with few points in the
        batch are decided in rounds (the first point of every key, then the second, ...), each round's
        p-values computed together across the keys; the others one key at a time (:meth:`decide`).
        """
        o, cal, W = self.online, self.cal, self.online.window
        sizes = [int(np.size(r)) for r in raws]
        offsets = np.cumsum([0, *sizes])
        total = int(offsets[-1])
        S = np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in raws]) if raws else np.empty(0)
        P = np.ones(total)
        F = np.zeros(total, dtype=bool)
        drifts: list[dict[str, Any]] = []
        small = []
        for j, state in enumerate(states):
            lo, hi = offsets[j], offsets[j + 1]
            if self.spot is not None or self.fixed is not None or sizes[j] > SMALL:
                d = self.decide(state, S[lo:hi])
                S[lo:hi], P[lo:hi], F[lo:hi] = d.score, d.p_value, d.is_anomaly
                drifts += [{**e, "key": j} for e in d.drifts]
            elif sizes[j]:
                small.append(j)
                if self._a:
                    a, e = self._a, state.ewma
                    for i in range(lo, hi):
                        e = S[i] if e is None else a * S[i] + (1.0 - a) * e
                        S[i] = e
                    state.ewma = float(e) if e is not None else None
        cols = np.arange(W)
        for r in range(SMALL):
            active = [j for j in small if sizes[j] > r]
            if not active:
                break
            st = [states[j] for j in active]
            at = offsets[active] + r
            s = S[at]
            c = np.array([x.count for x in st])
            rings = np.stack([x.ring for x in st])
            cnt = np.count_nonzero((rings >= s[:, None]) & (cols[None, :] < c[:, None]), axis=1)
            pk = (1.0 + cnt) / (c + 1.0)
            rebased = np.array([x.rebased for x in st])
            model = ~((c >= o.min_calibration) | (rebased & (c > 0)))
            if model.any():
                pc = (1.0 + cal.size - np.searchsorted(cal, s, side="left")) / (cal.size + 1.0)
                pk = np.where(model, pc, pk)
            P[at] = pk
            event = (s != s) | (pk <= o.alpha)
            event |= (np.array([x.entered for x in st]) + 1) % self.every == 0
            takes = np.zeros(len(st), dtype=bool)
            if o.drift_window:
                takes = (np.array([x.n for x in st]) + r) % self.stride == 0
                event |= takes & (np.array([x.drift_n for x in st]) + 1 >= o.drift_window)
            for q in np.flatnonzero(event).tolist():
                j, x = active[q], st[q]
                lo, hi = offsets[j], offsets[j + 1]
                found: list[dict[str, Any]] = []
                self._point(x, r, S[lo:hi], None, P[lo:hi], F[lo:hi], found)
                drifts += [{**e, "key": j} for e in found]
            for q in np.flatnonzero(~event).tolist():
                x, v = st[q], float(s[q])
                x.ring[x.pos], x.stand_in[x.pos] = v, False
                x.pos = (x.pos + 1) % W
                x.count = min(x.count + 1, W)
                x.entered += 1
                if takes[q]:
                    x.drift[0, x.drift_n], x.drift[1, x.drift_n] = pk[q], v
                    x.drift_n += 1
        for j in small:
            states[j].n += sizes[j]
            states[j].n_flagged += int(np.count_nonzero(F[offsets[j] : offsets[j + 1]]))
        return Decisions(S, P, F, drifts)

    def _point(
        self,
        state: KeyState,
        i: int,
        scores: np.ndarray,
        spot_flags: np.ndarray | None,
        p: np.ndarray,
        flags: np.ndarray,
        drifts: list[dict[str, Any]],
    ) -> None:
        """Decide point ``i`` alone (the reference rule)."""
        o, cal = self.online, self.cal
        s = float(scores[i])
        if s != s:  # NaN: no evidence either way, not learned
            p[i] = 1.0
            return
        c = state.count
        if c >= o.min_calibration or (state.rebased and c):
            p[i] = (1.0 + np.count_nonzero(state.ring[:c] >= s)) / (c + 1.0)
        else:
            p[i] = (1.0 + cal.size - np.searchsorted(cal, s, side="left")) / (cal.size + 1.0)
        flag = bool(spot_flags[i]) if spot_flags is not None else bool(p[i] <= o.alpha)
        flags[i] = flag
        if not flag:  # protect: a flagged score never enters the calibration set
            self._enter(state, s, False)
            state.entered += 1
            if state.entered % self.every == 0:
                v = self._stand_in(state.ring[: state.count], ((state.entered // self.every) * GOLDEN) % 1.0)
                if v == v:
                    self._enter(state, v, True)
        if o.drift_window and (state.n + i) % self.stride == 0:
            state.drift[0, state.drift_n] = p[i]
            state.drift[1, state.drift_n] = s
            state.drift_n += 1
            if state.drift_n >= o.drift_window:
                drift = self._test(state, i)
                if drift is not None:
                    drifts.append(drift)

    def _enter(self, state: KeyState, v: float, stand_in: bool) -> None:
        state.ring[state.pos], state.stand_in[state.pos] = v, stand_in
        state.pos = (state.pos + 1) % self.online.window
        state.count = min(state.count + 1, self.online.window)

    def _blocks(
        self,
        state: KeyState,
        scores: np.ndarray,
        spot_flags: np.ndarray | None,
        p: np.ndarray,
        flags: np.ndarray,
        drifts: list[dict[str, Any]],
    ) -> None:
        """Decide runs of points at once: the point-by-point rule, for the points up to the next event."""
        o, cal = self.online, self.cal
        W, n, i = o.window, scores.size, 0
        while i < n:
            m = min(n - i, BLOCK, W)
            s = scores[i : i + m]
            c, ring = state.count, state.ring
            old = ring[:c] if c < W else np.concatenate((ring[state.pos :], ring[: state.pos]))  # oldest first
            k = np.arange(m)
            hi = c + k
            lo = np.maximum(0, hi - W)  # point k sees old[lo_k:] and the block's points before it
            cnt = c - np.searchsorted(np.sort(old), s, side="left")  # old scores >= s_k
            head = old[: min(m, c)]  # the old scores the block can push out
            gone = (np.arange(head.size)[None, :] < lo[:, None]) & (head[None, :] >= s[:, None])
            cnt = cnt - np.count_nonzero(gone, axis=1)
            cnt = cnt + np.count_nonzero((k[None, :] < k[:, None]) & (s[None, :] >= s[:, None]), axis=1)
            size = hi - lo
            pk = (1.0 + cnt) / (size + 1.0)
            model = ~((size >= o.min_calibration) | (state.rebased & (size > 0)))
            if model.any():
                pc = (1.0 + cal.size - np.searchsorted(cal, s, side="left")) / (cal.size + 1.0)
                pk = np.where(model, pc, pk)
            fk = spot_flags[i : i + m] if spot_flags is not None else pk <= o.alpha
            event = (s != s) | fk | ((state.entered + k + 1) % self.every == 0)
            takes = None
            if o.drift_window:
                takes = (state.n + i + k) % self.stride == 0
                event |= takes & (state.drift_n + np.cumsum(takes) >= o.drift_window)
            hit = np.flatnonzero(event)
            e = int(hit[0]) if hit.size else m
            if e:
                at = (state.pos + k[:e]) % W
                ring[at] = s[:e]
                state.stand_in[at] = False
                state.pos = (state.pos + e) % W
                state.count = min(c + e, W)
                state.entered += e
                p[i : i + e] = pk[:e]
                if takes is not None:
                    t = np.flatnonzero(takes[:e])
                    dn = state.drift_n
                    state.drift[0, dn : dn + t.size] = pk[t]
                    state.drift[1, dn : dn + t.size] = s[t]
                    state.drift_n += t.size
            if e < m:
                self._point(state, i + e, scores, spot_flags, p, flags, drifts)
                e += 1
            i += e

    def _stand_in(self, cal: np.ndarray, u: float) -> float:
        """A score from the tail beyond the flagging level, at the tail quantile ``u``.

        The tail's shape is the model's (its held-out calibration scores, fixed), put on the key's scale by
        matching the key's median and ``1 - TAIL alpha`` quantile to the model's; both lie well below the
        flagging level, among scores that entered as they were, so stand-ins never feed on each other.
        NaN for a set of fewer than 2 scores.
        """
        if cal.size < 2 or self.cal.size < 2:
            return math.nan
        hi = 1.0 - min(0.5, TAIL * self.online.alpha)
        k50, khi = _quantiles(cal, (0.5, hi), sort=True)
        m50, mhi, mq = _quantiles(self.cal, (0.5, hi, 1.0 - self.online.alpha * (1.0 - u)), sort=False)
        scale = (khi - k50) / (mhi - m50) if mhi > m50 else 1.0
        return float(k50 + scale * (mq - m50))

    def _effective(self, state: KeyState, window: np.ndarray) -> int:
        """The drift test's sample size: the window's and the calibration set's effective sizes combined as
        in a two-sample test (``n m / (n + m)``), since the p-values compare the window with that set."""
        o = self.online
        n = effective_size(window)
        c = state.count
        if c >= o.min_calibration or (state.rebased and c):
            r, at = state.ring, state.pos
            m = effective_size(r[:c] if c < o.window else np.concatenate((r[at:], r[:at])))  # oldest first
        else:
            m = self.cal.size  # the model's held-out scores: independent of the stream
        return max(2, int(n * m / (n + m)))

    def _critical(self, size: int) -> float:
        crit = self._crit.get(size)
        if crit is None:
            crit = self._crit[size] = ks_critical(size, self.online.drift_level)
        return crit

    def _test(self, state: KeyState, i: int) -> dict[str, Any] | None:
        o = self.online
        raw = state.drift[0, : state.drift_n]
        x = np.sort(raw)
        m = x.size
        k = np.arange(1, m + 1)
        d = float(max(np.max(k / m - x), np.max(x - (k - 1) / m)))
        window_scores = state.drift[1, : state.drift_n].copy()
        state.drift_n = 0
        if d <= self.crit:  # the critical value at the window's own size; a smaller effective size raises it
            return None
        size = self._effective(state, raw)
        crit = self._critical(size)
        if d <= crit:
            return None
        state.n_drifts += 1
        direction = "up" if float(np.median(x)) < 0.5 else "down"
        out = {"point": i, "statistic": d, "critical": crit, "effective_size": size, "direction": direction,
               "rebaselined": False}
        if o.drift_policy == "adapt" and o.adaptation == "rebaseline":
            med = float(np.median(window_scores))
            mad = 1.4826 * float(np.median(np.abs(window_scores - med)))
            keep = window_scores[window_scores <= med + 5.0 * mad] if mad > 0 else window_scores
            state.restart(keep)
            if self.spot is not None and keep.size > self.spot.depth + 1:
                try:
                    fresh = type(self.spot)(**_spot_args(self.spot)).fit(keep)
                    state.spot = fresh.initial_state()
                except (ParameterError, ValueError):  # too few peaks in the window: keep the old tail
                    pass
            out["rebaselined"] = True
        return out


def _quantiles(x: np.ndarray, qs: tuple[float, ...], *, sort: bool) -> list[float]:
    """Quantiles of ``x`` with linear interpolation (numpy's default rule); ``sort=False``: ``x`` is sorted."""
    n = x.size
    pos = [q * (n - 1) for q in qs]
    idx = sorted({min(int(v), n - 1) for v in pos} | {min(int(v) + 1, n - 1) for v in pos})
    part = np.partition(x, idx) if sort else x
    out = []
    for v in pos:
        lo = min(int(v), n - 1)
        a, b = float(part[lo]), float(part[min(lo + 1, n - 1)])
        out.append(a + (v - lo) * (b - a))
    return out


def _spot_args(spot: Any) -> dict[str, Any]:
    return {"risk": spot.risk, "level": spot.level, "depth": spot.depth, "refit_every": spot.refit_every}
