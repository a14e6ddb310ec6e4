"""Metrics for flags on a series, where anomalies are ranges of time steps (labels: 1 = anomaly).

Honest metrics first: point-wise precision / recall / F1, event-wise (each labelled range found or missed,
each flagged range that touches no labelled one a false alarm) and range-based precision / recall
(Tatbul et al., NeurIPS 2018). Point-adjusted F1 (a labelled range counts as wholly found when one of its
steps is flagged) is here because papers report it, but it is optimistic: random flags reach a high PA-F1
(Kim et al., AAAI 2022). :func:`series_report` prints it only next to the honest ones, with that note.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import InputError, check_labels, find_runs
from .point import precision_recall_f1

PA_NOTE = (
    "point-adjusted F1 counts a whole labelled range as found when one of its steps is flagged; it is "
    "optimistic (random flags score high: Kim et al., AAAI 2022), so read it next to the point-wise, "
    "event-wise and range-based F1"
)
BIASES = ("flat", "front", "back", "middle")
CARDINALITIES = ("one", "reciprocal")


def _flags(flags: Any, n: int | None = None, name: str = "flags") -> np.ndarray:
    f = np.asarray(flags)
    if f.ndim != 1 or (n is not None and f.size != n):
        raise InputError(f"{name} must be 1-D with one value per time step ({n}); got shape {f.shape}")
    return f.astype(bool)


def _pair(y_true: Any, flags: Any) -> tuple[np.ndarray, np.ndarray]:
    f = _flags(flags)
    return check_labels(y_true, f.size, name="y_true").astype(bool), f


ranges = find_runs  #: runs of True in a 1-D mask as int64 rows ``[start, stop)`` (shape (k, 2))


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def point_prf(y_true: Any, flags: Any) -> tuple[float, float, float]:
    """Point-wise precision, recall and F1 (each time step is one sample)."""
    return precision_recall_f1(*_pair(y_true, flags))


def event_prf(y_true: Any, flags: Any) -> dict[str, float]:
    """Event-wise metrics: a labelled range is found when any of its steps is flagged; a flagged range that
    touches no labelled range is a false-alarm event.

    Returns recall (found / labelled ranges), precision (flagged ranges touching a labelled range / flagged
    ranges), their F1, and the counts ``events``, ``found``, ``flagged_events``, ``false_alarm_events``.
    """
    y, f = _pair(y_true, flags)
    true_r, pred_r = ranges(y), ranges(f)
    cf = np.cumsum(np.r_[0, f])
    cy = np.cumsum(np.r_[0, y])
    found = int(((cf[true_r[:, 1]] - cf[true_r[:, 0]]) > 0).sum()) if true_r.size else 0
    hits = int(((cy[pred_r[:, 1]] - cy[pred_r[:, 0]]) > 0).sum()) if pred_r.size else 0
    n_true, n_pred = len(true_r), len(pred_r)
    r = found / n_true if n_true else 0.0
    p = hits / n_pred if n_pred else 0.0
    return {
        "precision": p,
        "recall": r,
        "f1": _f1(p, r),
        "events": float(n_true),
        "found": float(found),
        "flagged_events": float(n_pred),
        "false_alarm_events": float(n_pred - hits),
    }


def point_adjust(y_true: Any, flags: Any) -> np.ndarray:
    """Flags with every labelled range set wholly True when any of its steps is flagged (optimistic; see PA_NOTE)."""
    y, f = _pair(y_true, flags)
    out = f.copy()
    cf = np.cumsum(np.r_[0, f])
    for a, b in ranges(y):
        if cf[b] > cf[a]:
            out[a:b] = True
    return out


def point_adjusted_prf(y_true: Any, flags: Any) -> tuple[float, float, float]:
    """Precision, recall and F1 after :func:`point_adjust` (optimistic: report it only next to honest ones)."""
    return precision_recall_f1(np.asarray(y_true), point_adjust(y_true, flags))


def _delta(length: int, bias: str) -> np.ndarray:
    i = np.arange(1, length + 1, dtype=np.float64)
    if bias == "flat":
        return np.ones(length)
    if bias == "front":
        return length - i + 1
    if bias == "back":
        return i
    return np.where(i <= length / 2, i, length - i + 1)  # middle


def _range_side(
    own: np.ndarray, other_mask: np.ndarray, other_ids: np.ndarray, alpha: float, bias: str, cardinality: str
) -> float:
    """Mean over ``own`` ranges of alpha * existence + (1 - alpha) * cardinality * positional overlap."""
    total = 0.0
    for a, b in own:
        hit = other_mask[a:b]
        if not hit.any():
            continue
        delta = _delta(b - a, bias)
        overlap = float(delta[hit].sum() / delta.sum())
        x = np.unique(other_ids[a:b][hit]).size
        card = 1.0 if x <= 1 or cardinality == "one" else 1.0 / x
        total += alpha + (1.0 - alpha) * card * overlap
    return total / len(own)


def range_prf(
    y_true: Any, flags: Any, *, alpha: float = 0.0, bias: str = "flat", cardinality: str = "one"
) -> tuple[float, float, float]:
    """Range-based precision, recall and F1 of Tatbul et al. (NeurIPS 2018).

    Recall of a labelled range ``R``: ``alpha * [R is touched] + (1 - alpha) * gamma * omega``, where
    ``omega`` is the positional share of ``R`` that is flagged (weights ``delta`` by ``bias``: flat, front,
    back, middle) and ``gamma`` the cardinality factor (1, or 1/x when ``R`` is split over x flagged ranges
    and ``cardinality="reciprocal"``). Precision of a flagged range is the same with ``alpha = 0`` and the
    roles swapped. Both are means over ranges; no flagged range gives precision 0.
    """
    if bias not in BIASES:
        raise InputError(f"bias must be one of {list(BIASES)}; got {bias!r}")
    if cardinality not in CARDINALITIES:
        raise InputError(f"cardinality must be one of {list(CARDINALITIES)}; got {cardinality!r}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1]; got {alpha!r}")
    y, f = _pair(y_true, flags)
    true_r, pred_r = ranges(y), ranges(f)
    if not len(true_r):
        raise InputError("range-based recall needs at least one labelled anomaly range in y_true; all labels are 0")
    ids_true = np.cumsum(np.r_[0, np.diff(y.astype(np.int8))] == 1) + int(y[0])
    ids_pred = np.cumsum(np.r_[0, np.diff(f.astype(np.int8))] == 1) + int(f[0])
    r = _range_side(true_r, f, ids_pred, alpha, bias, cardinality)
    p = _range_side(pred_r, y, ids_true, 0.0, bias, cardinality) if len(pred_r) else 0.0
    return p, r, _f1(p, r)


def series_report(y_true: Any, flags: Any) -> dict[str, Any]:
    """Point-wise, event-wise and range-based precision / recall / F1, with PA-F1 alongside and its note."""
    p, r, f1 = point_prf(y_true, flags)
    ev = event_prf(y_true, flags)
    rp, rr, rf = range_prf(y_true, flags)
    _, _, pa = point_adjusted_prf(y_true, flags)
    return {
        "point": {"precision": p, "recall": r, "f1": f1},
        "event": ev,
        "range": {"precision": rp, "recall": rr, "f1": rf},
        "point_adjusted_f1": pa,
        "note": PA_NOTE,
    }
