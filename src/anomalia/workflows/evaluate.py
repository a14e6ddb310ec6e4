"""``evaluate`` / ``report``: score data and collect everything a report shows, in an
:class:`~anomalia.results.Evaluation` (numbers only: scores, labels, operating points, top rows with their
contributing features, training history); :mod:`anomalia.report` draws it and never fits or scores.

Here: tables (:func:`evaluate_file`, streamed) and arrays (the demo), and what every evaluation shares
(:func:`build_evaluation`, :func:`operating_points`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from .._core import InputError, ThresholdError
from ..data import BATCH_ROWS, TabularEncoder, check_columns, count_rows
from ..detectors import BaseDetector
from ..metrics import evaluate as point_metrics
from ..model import Model
from ..results import Contribution, Evaluation, OperatingPoint, TopRow
from ..scoring import BestF1, TargetPrecision, TargetRecall, Threshold
from .demo import DemoResult
from .score import RowProgress, labels_of, score_batches

#: Rows listed in the report's table of top anomalies.
TOP_ROWS = 20


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


def top_rows(
    model: Model, table: pa.Table, rows: np.ndarray, labels: np.ndarray | None, k: int = 3
) -> list[TopRow]:
    """The report's rows: ``table`` holds the raw input rows numbered ``rows``; each gets its top ``k`` input
    columns (explained in one scoring pass) with the values the row has."""
    if table.num_rows == 0:
        return []
    scored = model.score(table, explain="all", top_k=k)
    assert scored.contributions is not None
    raw = {c: table.column(c).to_pylist() for c in model.input_columns}
    out = []
    for i, r in enumerate(rows):
        c = scored.contributions
        values = c.values_of(i) if c.has_values else [{} for _ in c.of(i)]
        contrib = [Contribution(f, s, raw[f][i], **v) for (f, s), v in zip(c.of(i), values, strict=True)]
        label = None if labels is None else int(labels[i])
        out.append(
            TopRow(int(r), float(scored.score[i]), float(scored.p_value[i]), bool(scored.is_anomaly[i]), label, contrib)
        )
    return out


def build_evaluation(
    model: Model,
    *,
    title: str,
    data: str,
    scores: np.ndarray,
    labels: np.ndarray | None,
    top_rows: list[TopRow],
    target_precision: float,
    target_recall: float,
    seconds: float,
) -> Evaluation:
    """The :class:`Evaluation` of ``model``'s ``scores`` (and ``labels``) on ``data``."""
    det = model.detector
    thr = det.fitted_threshold()
    flags = thr.predict(scores)
    if labels is not None:
        metrics = point_metrics(labels, scores, flags)
    else:
        metrics = {"n": float(scores.size), "flagged": float(flags.sum())}
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
        feature_names=model.feature_names if det.input_kind != "images" else [],
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
    """Score the table file ``data`` (streamed) with a saved model; with ``label_column``, measure it
    against the labels. Keeps every score (8 bytes a row) and the ``top_n`` highest-scored rows; explains
    only those."""
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    if label_column is not None:
        check_columns(data, [label_column], what="label column")
    total = count_rows(data)
    extra = [label_column] if label_column else []
    scores, labels = [], []
    best_scores, best_rows = np.empty(0), np.empty(0, dtype=np.int64)
    best_y = np.empty(0, dtype=np.int64)
    best: pa.Table | None = None
    n = 0
    for rows, batch in score_batches(m, data, batch_rows=batch_rows, explain="none", extra_columns=extra):
        offset = int(rows.row[0]) if rows.row is not None else n
        scores.append(rows.score)
        y = labels_of(batch, label_column, offset) if label_column else None
        if y is not None:
            labels.append(y)
        # keep the top_n rows seen so far, as read (for display and their explanations)
        cand = np.argsort(-rows.score, kind="stable")[:top_n]
        pool = pa.Table.from_batches([batch.take(pa.array(cand))])
        pool = pool if best is None else pa.concat_tables([best, pool])
        all_scores = np.r_[best_scores, rows.score[cand]]
        keep = np.argsort(-all_scores, kind="stable")[:top_n]
        best, best_scores = pool.take(pa.array(keep)), all_scores[keep]
        best_rows = np.r_[best_rows, cand + offset][keep]
        if y is not None:
            best_y = np.r_[best_y, y[cand]][keep]
        n += len(rows)
        if progress is not None:
            progress(n, total)
    if n == 0 or best is None:
        raise InputError(f"{data} has no rows to evaluate")
    return build_evaluation(
        m,
        title=f"{m.detector.name} on {Path(data).name}",
        data=str(data),
        scores=np.concatenate(scores),
        labels=np.concatenate(labels) if labels else None,
        top_rows=top_rows(m, best, best_rows, best_y if label_column else None),
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
    m = Model(detector, TabularEncoder.pass_through(names), name=detector.name)
    X = np.asarray(X, dtype=np.float32)
    scores = detector.anomaly_score(X)
    top = np.argsort(-scores, kind="stable")[:top_n]
    labels = None if y is None else np.asarray(y, dtype=np.int64)
    table = pa.table({c: X[top, j] for j, c in enumerate(names)})
    return build_evaluation(
        m,
        title=title,
        data=data,
        scores=scores,
        labels=labels,
        top_rows=top_rows(m, table, top, None if labels is None else labels[top]),
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
