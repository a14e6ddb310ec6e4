"""Point metrics for scores and decisions, built on scikit-learn's metrics (labels: 1 = anomaly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import InputError, check_labels


def _skm() -> Any:
    """scikit-learn's metrics module, imported on first use: importing it adds about 0.2 s to every command."""
    from sklearn import metrics

    return metrics


def _scores(scores: Any, n: int | None = None, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if n is not None and s.size != n:
        raise InputError(f"{name} has {s.size} values but there are {n} labels; pass one per row")
    if not np.isfinite(s).all():
        raise InputError(f"{name} contain NaN or inf; metrics need finite scores")
    return s


def _both_classes(y: np.ndarray, what: str) -> None:
    if y.min() == y.max():
        only = "anomalies" if y[0] == 1 else "normal rows"
        raise InputError(f"{what} needs both normal rows and anomalies in y; got only {only} ({y.size} rows)")


def confusion(y_true: Any, flags: Any) -> dict[str, int]:
    """Counts of true/false positives/negatives for boolean ``flags`` (True = flagged as anomaly)."""
    f = np.asarray(flags).astype(bool).ravel()
    y = check_labels(y_true, f.size, name="y_true")
    tn, fp, fn, tp = _skm().confusion_matrix(y, f.astype(int), labels=[0, 1]).ravel()
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


def precision_recall_f1(y_true: Any, flags: Any) -> tuple[float, float, float]:
    f = np.asarray(flags).astype(int).ravel()
    y = check_labels(y_true, f.size, name="y_true")
    p, r, f1, _ = _skm().precision_recall_fscore_support(y, f, average="binary", zero_division=0)
    return float(p), float(r), float(f1)


def roc_auc(y_true: Any, scores: Any) -> float:
    s = _scores(scores)
    y = check_labels(y_true, s.size, name="y_true")
    _both_classes(y, "ROC-AUC")
    return float(_skm().roc_auc_score(y, s))


def pr_auc(y_true: Any, scores: Any) -> float:
    """Area under the precision-recall curve as average precision."""
    s = _scores(scores)
    y = check_labels(y_true, s.size, name="y_true")
    _both_classes(y, "PR-AUC")
    return float(_skm().average_precision_score(y, s))


def precision_at_k(y_true: Any, scores: Any, k: int | None = None) -> float:
    """Share of anomalies among the ``k`` top-scored rows (``k`` defaults to the number of anomalies)."""
    s = _scores(scores)
    y = check_labels(y_true, s.size, name="y_true")
    k = int(y.sum()) if k is None else int(k)
    if not 1 <= k <= s.size:
        raise InputError(f"k must be in [1, {s.size}]; got {k}")
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean())


@dataclass(frozen=True)
class ThresholdSweep:
    """Precision, recall and F1 when flagging ``score >= thresholds[i]``."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


def threshold_sweep(y_true: Any, scores: Any) -> ThresholdSweep:
    """Every operating point of ``scores``: the table a user reads to trade precision for recall."""
    s = _scores(scores)
    y = check_labels(y_true, s.size, name="y_true")
    _both_classes(y, "a threshold sweep")
    p, r, t = _skm().precision_recall_curve(y, s)
    p, r = p[:-1], r[:-1]  # drop the (precision=1, recall=0) end point that has no threshold
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return ThresholdSweep(t, p, r, f1)


def roc_curve(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds)."""
    s = _scores(scores)
    y = check_labels(y_true, s.size, name="y_true")
    _both_classes(y, "a ROC curve")
    return _skm().roc_curve(y, s)


def evaluate(y_true: Any, scores: Any, flags: Any = None) -> dict[str, float]:
    """Ranking metrics of ``scores`` and, with ``flags``, the decision metrics and observed false-alarm rate."""
    s = _scores(scores)
    y = check_labels(y_true, s.size, name="y_true")
    out: dict[str, float] = {"n": float(s.size), "n_anomalies": float(y.sum())}
    if y.min() != y.max():
        out.update(roc_auc=roc_auc(y, s), pr_auc=pr_auc(y, s), precision_at_k=precision_at_k(y, s))
    if flags is not None:
        c = confusion(y, flags)
        p, r, f1 = precision_recall_f1(y, flags)
        out.update(precision=p, recall=r, f1=f1, **{k: float(v) for k, v in c.items()})
        out["false_alarm_rate"] = c["fp"] / max(c["fp"] + c["tn"], 1)
    return out
