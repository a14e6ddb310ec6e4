"""``evaluate`` / ``report``: score a file (or arrays) and collect everything a report shows.

The result object holds numbers only (scores, labels, operating points, top rows with their contributing
features, training history); :mod:`anomalia.report` draws it and never fits or scores. Later views (time
series, images) add their data under :attr:`Evaluation.extras` and a section to the report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .._core import InputError, ThresholdError
from ..data import BATCH_ROWS, TabularEncoder, check_columns, count_rows
from ..detectors import BaseDetector
from ..metrics import evaluate as point_metrics
from ..scoring import BestF1, TargetPrecision, TargetRecall, Threshold, conformal_p_values
from .demo import DemoResult
from .model import Model, load_model
from .score import RowProgress, labels_of, score_batches, top_contributions

#: Rows listed in the report's table of top anomalies.
TOP_ROWS = 20


@dataclass
class Contribution:
    feature: str
    share: float
    value: Any


@dataclass
class TopRow:
    """One of the highest-scored rows: where it is, its score and decision, and why."""

    row: int
    score: float
    p_value: float
    flagged: bool
    label: int | None
    contributions: list[Contribution]


@dataclass
class OperatingPoint:
    """A threshold and what it gives on the evaluated data (precision etc. are None without labels)."""

    name: str
    threshold: float
    flagged: int
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    note: str = ""


@dataclass
class Evaluation:
    """Everything an evaluation measured; the input of :func:`anomalia.report.build_report`."""

    title: str
    data: str
    detector: str
    params: dict[str, Any]
    threshold: str
    threshold_value: float
    scores: np.ndarray
    flags: np.ndarray
    labels: np.ndarray | None
    calibration_scores: np.ndarray
    metrics: dict[str, float]
    operating_points: list[OperatingPoint]
    top_rows: list[TopRow]
    history: list[dict[str, Any]]
    feature_names: list[str]
    seconds: float = 0.0
    target_precision: float = 0.9
    target_recall: float = 0.9
    #: Other detectors' scores on the same rows, drawn beside this one's curves (the demo compares four).
    comparison: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per-detector metric rows for a comparison table.
    comparison_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Room for later views (series, images): name -> data their report section reads.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and 0 < int(self.labels.sum()) < self.labels.size


def operating_points(
    scores: np.ndarray,
    labels: np.ndarray | None,
    threshold: Threshold,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
) -> list[OperatingPoint]:
    """The model's threshold and, with labels, best F1 and the thresholds that reach the targets."""
    points: list[tuple[str, Threshold | None, float | None, str]] = [("current " + threshold.spec, None, None, "")]
    if labels is not None and 0 < labels.sum() < labels.size:
        for name, t in (
            (f"precision ≥ {target_precision:g}", TargetPrecision(target_precision)),
            (f"recall ≥ {target_recall:g}", TargetRecall(target_recall)),
            ("best F1", BestF1()),
        ):
            try:
                points.append((name, t, t.fit(scores, labels).threshold_, ""))
            except ThresholdError as exc:
                points.append((name, None, None, str(exc).split(";")[0]))
    out = []
    for name, _, value, note in points:
        thr = threshold.threshold_ if value is None and not note else value
        if thr is None:
            out.append(OperatingPoint(name, float("nan"), 0, note=note))
            continue
        flags = scores > thr
        op = OperatingPoint(name, float(thr), int(flags.sum()), note=note)
        if labels is not None and 0 < labels.sum() < labels.size:
            tp = int((flags & (labels == 1)).sum())
            op.precision = tp / max(int(flags.sum()), 1)
            op.recall = tp / int(labels.sum())
            op.f1 = 2 * op.precision * op.recall / (op.precision + op.recall) if tp else 0.0
        out.append(op)
    return out


def _top_rows(
    model: Model,
    X: np.ndarray,
    rows: np.ndarray,
    scores: np.ndarray,
    p: np.ndarray,
    flags: np.ndarray,
    labels: np.ndarray | None,
    raw: dict[str, list[Any]],
    k: int = 3,
) -> list[TopRow]:
    if rows.size == 0:
        return []
    idx, share = top_contributions(model, X, k)
    names = model.input_columns
    out = []
    for i, r in enumerate(rows):
        contrib = [Contribution(names[j], float(s), raw[names[j]][i]) for j, s in zip(idx[i], share[i], strict=True)]
        label = None if labels is None else int(labels[i])
        out.append(TopRow(int(r), float(scores[i]), float(p[i]), bool(flags[i]), label, contrib))
    return out


def _build(
    model: Model,
    *,
    title: str,
    data: str,
    scores: np.ndarray,
    labels: np.ndarray | None,
    top: tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, list[Any]]],
    target_precision: float,
    target_recall: float,
    seconds: float,
) -> Evaluation:
    det = model.detector
    thr = det._fitted_threshold()
    flags = thr.predict(scores)
    if labels is not None:
        metrics = point_metrics(labels, scores, flags)
    else:
        metrics = {"n": float(scores.size), "flagged": float(flags.sum())}
    top_rows_idx, X_top, y_top, raw = top
    top_scores = scores[top_rows_idx]
    top_rows = _top_rows(
        model,
        X_top,
        top_rows_idx,
        top_scores,
        conformal_p_values(det.calibration_scores_, top_scores),
        thr.predict(top_scores),
        y_top,
        raw,
    )
    return Evaluation(
        title=title,
        data=data,
        detector=det.name,
        params={k: v for k, v in det.get_params(deep=False).items() if not hasattr(v, "spec")},
        threshold=thr.spec,
        threshold_value=float(thr.threshold_),
        scores=scores,
        flags=flags,
        labels=labels,
        calibration_scores=np.asarray(det.calibration_scores_),
        metrics=metrics,
        operating_points=operating_points(scores, labels, thr, target_precision, target_recall),
        top_rows=top_rows,
        history=list(getattr(det, "history_", [])),
        feature_names=model.feature_names,
        seconds=seconds,
        target_precision=target_precision,
        target_recall=target_recall,
    )


def evaluate_file(
    model: str | Path | Model,
    data: str | Path,
    *,
    label_column: str | None = None,
    batch_rows: int = BATCH_ROWS,
    top_n: int = TOP_ROWS,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
    progress: RowProgress | None = None,
) -> Evaluation:
    """Score ``data`` (streamed) with a saved model; with ``label_column``, measure it against the labels.

    Keeps every score (8 bytes a row) and the ``top_n`` highest-scored rows; explains only those.
    """
    start = time.perf_counter()
    m = model if isinstance(model, Model) else load_model(model)
    if label_column is not None:
        check_columns(data, [label_column], what="label column")
    total = count_rows(data)
    extra = [label_column] if label_column else []
    scores, labels = [], []
    best_scores = np.empty(0)
    best_rows = np.empty(0, dtype=np.int64)
    best_X = np.empty((0, len(m.feature_names)), dtype=np.float32)
    best_y = np.empty(0, dtype=np.int64)
    best_raw: dict[str, list[Any]] = {c: [] for c in m.input_columns}
    n = 0
    for b in score_batches(m, data, batch_rows=batch_rows, explain="none", extra_columns=[*extra, *m.input_columns]):
        scores.append(b.scores)
        y = labels_of(b, label_column) if label_column else None
        if y is not None:
            labels.append(y)
        # keep the top_n rows seen so far (values as read, for display)
        cand = np.argsort(-b.scores, kind="stable")[:top_n]
        raw = {c: b.source.column(c).take(pa.array(cand)).to_pylist() for c in m.input_columns}
        all_scores = np.r_[best_scores, b.scores[cand]]
        keep = np.argsort(-all_scores, kind="stable")[:top_n]
        best_scores = all_scores[keep]
        best_rows = np.r_[best_rows, cand + b.offset][keep]
        assert b.X is not None  # explain="none" keeps the encoded rows
        best_X = np.concatenate([best_X, b.X[cand]])[keep]
        if y is not None:
            best_y = np.r_[best_y, y[cand]][keep]
        best_raw = {c: [(best_raw[c] + raw[c])[i] for i in keep] for c in m.input_columns}
        n += b.scores.size
        if progress is not None:
            progress(n, total)
    if n == 0:
        raise InputError(f"{data} has no rows to evaluate")
    all_scores = np.concatenate(scores)
    all_labels = np.concatenate(labels) if labels else None
    return _build(
        m,
        title=f"{m.detector.name} on {Path(data).name}",
        data=str(data),
        scores=all_scores,
        labels=all_labels,
        top=(best_rows, best_X, best_y if label_column else None, best_raw),
        target_precision=target_precision,
        target_recall=target_recall,
        seconds=time.perf_counter() - start,
    )


def evaluate_arrays(
    detector: BaseDetector,
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    feature_names: Sequence[str],
    title: str,
    data: str = "in-memory data",
    top_n: int = TOP_ROWS,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
) -> Evaluation:
    """The evaluation of a fitted detector on a numeric array (the demo's path); no file involved."""
    start = time.perf_counter()
    names = list(feature_names)
    encoder = TabularEncoder.from_dict(
        {
            "encoder_version": 1,
            "max_categories": 1,
            "impute": None,
            "columns": [{"name": c, "kind": "numeric", "fill": None, "categories": []} for c in names],
        }
    )
    m = Model(detector, encoder)
    X = np.asarray(X, dtype=np.float32)
    scores = detector.anomaly_score(X)
    top = np.argsort(-scores, kind="stable")[:top_n]
    raw = {c: X[top, j].tolist() for j, c in enumerate(names)}
    labels = None if y is None else np.asarray(y, dtype=np.int64)
    return _build(
        m,
        title=title,
        data=data,
        scores=scores,
        labels=labels,
        top=(top, X[top], None if labels is None else labels[top], raw),
        target_precision=target_precision,
        target_recall=target_recall,
        seconds=time.perf_counter() - start,
    )


def demo_evaluation(result: DemoResult, detector: str = "autoencoder") -> Evaluation:
    """The report data of ``anomalia demo``: ``detector`` in full, the other detectors for comparison."""
    if result.X_test is None or detector not in result.detectors:
        raise InputError(f"the demo result has no detector {detector!r}; run the demo with it")
    ev = evaluate_arrays(
        result.detectors[detector],
        result.X_test,
        result.y_test,
        feature_names=result.feature_names,
        title=f"Demo: breast cancer (Wisconsin), {detector}",
        data=(
            f"breast cancer (scikit-learn): trained on {result.n_train} benign records; held out "
            f"{result.n_test_normal} benign and {result.n_test_anomalies} malignant"
        ),
    )
    ev.comparison = {n: d.anomaly_score(result.X_test) for n, d in result.detectors.items() if n != detector}
    ev.comparison_metrics = dict(result.rows)
    return ev
