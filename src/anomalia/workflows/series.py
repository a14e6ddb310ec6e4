"""Series files: fit, score and evaluate a series detector on a CSV or Parquet file with a timestamp column.

A series is read whole and in file order (windows need their neighbours, so it is not streamed in
batches). The timestamp column, resampling and fill options are detector arguments (``time_column``,
``resample``, ``fill``) and are saved with the model, so scoring reads new files the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._core import InputError
from ..data import as_labels, read_table, table_format
from ..metrics.timeseries import PA_NOTE, series_report
from ..model import Model
from ..results import Contribution, Evaluation, ScoredRows, SeriesView, TopRow
from .evaluate import build_evaluation
from .fit import FitResult, fit_labelled_threshold, make_fit_detector, warn_label_like
from .score import ScoreResult, Writer


def read_series(data: str | Path, *, time_column: str | None, drop: Sequence[str] = ()) -> pd.DataFrame:
    """A whole CSV or Parquet file as a DataFrame, in file order, without the ``drop`` columns."""
    frame = read_table(data).to_pandas()
    if time_column is not None and time_column not in frame.columns:
        raise InputError(
            f"{data} has no column {time_column!r} (--time-column); its columns are {list(frame.columns)[:10]}"
        )
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        raise InputError(f"{data} has no column(s) {missing}; its columns are {list(frame.columns)[:10]}")
    return frame.drop(columns=list(drop))


def fit_series_file(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "cnn-forecaster",
    params: Iterable[str] | Mapping[str, Any] | None = None,
    time_column: str | None = None,
    label_column: str | None = None,
    threshold: str | None = None,
    contaminated: bool = False,
    drop: Sequence[str] = (),
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    time_unit: str | None = None,
) -> FitResult:
    """Fit series detector ``model`` on the series in ``data`` (in file order) and save it to ``out``.

    ``time_column`` is the timestamp column (saved as the detector's ``time_column``); ``label_column`` and
    ``drop`` are left out of the channels. ``date_format``, ``dayfirst`` and ``time_unit`` say how to read
    the time column (the detector's arguments of the same names; by default decided from the values); the
    fit result's ``time_parsing`` says how it was read, and the model reads new files the same way.
    """
    start = time.perf_counter()
    detector = make_fit_detector(model, params, threshold=threshold, seed=seed, contaminated=contaminated)
    if detector.input_kind != "series":
        raise InputError(f"detector {model!r} does not read series; use a series detector, e.g. 'cnn-forecaster'")
    if time_column is not None:
        detector.set_params(time_column=time_column)
    parse = {"date_format": date_format, "dayfirst": dayfirst, "time_unit": time_unit}
    detector.set_params(**{k: v for k, v in parse.items() if v is not None})
    rule = detector.threshold_rule()
    if rule.needs_labels and label_column is None:
        raise InputError(
            f"threshold '{rule.spec}' is fitted on labelled anomaly steps; pass --label-column with the column "
            "that marks them (1 = anomaly), or use 'false-alarm:ALPHA'"
        )
    frame = read_series(data, time_column=detector.time_column, drop=drop)  # type: ignore[attr-defined]
    labels = None
    if label_column is not None:
        if label_column not in frame.columns:
            raise InputError(
                f"{data} has no label column {label_column!r} (--label-column); its columns are "
                f"{list(frame.columns)[:10]}"
            )
        labels = as_labels(np.asarray(frame[label_column]), label_column)
        frame = frame.drop(columns=[label_column])
        if rule.needs_labels and not labels.any():
            raise InputError(
                f"threshold '{rule.spec}' needs labelled anomalies, but {label_column!r} marks none in {data}; "
                "use 'false-alarm:ALPHA' or label some anomaly steps"
            )
    warn_label_like([c for c in frame.columns if c != detector.time_column], "this fit")  # type: ignore[attr-defined]
    detector.fit(frame, callback=callback, labels=labels)  # type: ignore[call-arg]
    if rule.needs_labels:
        assert labels is not None
        scores = detector.anomaly_score(frame)
        fit_labelled_threshold(detector, int((labels == 0).sum()), scores[labels == 1])
    fitted = Model(detector, name=Path(out).name, label_column=label_column)
    fitted.save(out)
    step = detector.step_  # type: ignore[attr-defined]
    parsing = detector.time_parsing_  # type: ignore[attr-defined]
    if parsing is not None:
        stamps = detector.timestamps(frame)  # type: ignore[attr-defined]
        parsing = f"{detector.time_column}: {parsing.how}; {stamps[0]} to {stamps[-1]}"  # type: ignore[attr-defined]
    return FitResult.of(
        fitted,
        data=data,
        n_rows=int(frame.shape[0]),
        seconds=time.perf_counter() - start,
        step=None if step is None else str(step),
        n_excluded_anomalies=int(getattr(detector, "n_excluded_steps_", 0)),
        n_excluded_windows=int(getattr(detector, "n_excluded_windows_", 0)),
        time_parsing=parsing,
    )


def score_series(model: str | Path | Model, data: str | Path, *, explain: str = "all", top_k: int = 3) -> ScoredRows:
    """Score every step of the series in ``data`` with a saved series model (rows aligned with the file)."""
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind != "series":
        raise InputError(f"{model} is not a series model; score it without --time-column")
    frame = read_series(data, time_column=getattr(m.detector, "time_column", None))
    return m.score(frame, explain=explain, top_k=top_k)


def score_series_file(
    model: str | Path | Model,
    data: str | Path,
    out: str | Path,
    *,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] = (),
    on_batch: Callable[[ScoredRows, Any], None] | None = None,
) -> ScoreResult:
    """Score a series file and write ``out`` (.parquet or .csv): one row per input row with ``row``, the
    timestamp and ``keep`` columns, ``score``, ``p_value``, ``is_anomaly`` and the ``top_k`` channels with
    the largest shares of the step's score (``top_feature_i`` / ``top_share_i``, for the ``explain`` rows)."""
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    frame = read_series(data, time_column=getattr(m.detector, "time_column", None))
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise InputError(f"--keep {missing[0]!r} is not a column of {data}")
    rows = m.score(frame, explain=explain, top_k=top_k)
    if on_batch is not None:
        on_batch(rows, frame)
    table = rows.with_columns({c: pa.array(frame[c].to_numpy()) for c in keep}).to_arrow(top_k)
    table_format(out)
    writer = Writer(Path(out))
    ok = False
    try:
        writer.write(table)
        ok = True
    finally:
        writer.close(ok)
    return ScoreResult(
        str(data),
        Path(out),
        len(rows),
        rows.n_flagged,
        time.perf_counter() - start,
        m.detector.fitted_threshold().spec,
        table.schema.names,
        kind="series",
    )


def evaluate_series_file(
    model: str | Path | Model,
    data: str | Path,
    *,
    label_column: str | None = None,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
    top_n: int = 20,
) -> Evaluation:
    """Evaluate a series model on a (labelled) series file: the :class:`Evaluation` the report draws.

    With labels, ``metrics`` holds the ranking metrics and the point-wise, event-wise (``event_*``) and
    range-based (``range_*``) precision / recall / F1 of the model's flags, with point-adjusted F1
    (``pa_f1``, optimistic) alongside; ``series`` holds what the report's series view draws.
    """
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    det = m.detector
    frame = read_series(data, time_column=getattr(det, "time_column", None))
    rows = m.score(frame, explain="all", top_k=len(m.channels))
    labels = None
    if label_column is not None:
        if label_column not in frame.columns:
            raise InputError(
                f"{data} has no label column {label_column!r}; its columns are {list(frame.columns)[:10]}"
            )
        labels = as_labels(np.asarray(frame[label_column]), label_column)
    channels = m.channels
    values = frame[channels].to_numpy(dtype=np.float64)
    assert rows.contributions is not None
    shares = np.zeros((len(rows), len(channels)))
    np.put_along_axis(shares, rows.contributions.index.astype(np.int64), rows.contributions.share, axis=1)
    ev = build_evaluation(
        m,
        title=f"{det.name} on {Path(data).name}",
        data=str(data),
        scores=rows.score,
        labels=labels,
        top_rows=[],
        target_precision=target_precision,
        target_recall=target_recall,
        seconds=time.perf_counter() - start,
    )
    expected = det.expected(m._series_input(frame)[0])  # the fitted channels (and the time column) only
    low, high = getattr(det, "feature_low_", None), getattr(det, "feature_high_", None)

    def contribution(r: int, j: int) -> Contribution:
        e = None if expected is None or np.isnan(expected[r, j]) else float(expected[r, j])
        v = float(values[r, j])
        if low is None or high is None:
            return Contribution(channels[j], float(shares[r, j]), v, observed=v, expected=e)
        return Contribution(channels[j], float(shares[r, j]), v, v, e, float(low[j]), float(high[j]))

    time_index = det.timestamps(frame)  # type: ignore[attr-defined]
    stamps = None if time_index is None else time_index.to_numpy()
    for r in np.argsort(-rows.score, kind="stable")[:top_n]:
        order = np.argsort(-shares[r], kind="stable")[:3]
        ev.top_rows.append(
            TopRow(
                int(r),
                float(rows.score[r]),
                float(rows.p_value[r]),
                bool(rows.is_anomaly[r]),
                None if labels is None else int(labels[r]),
                [contribution(int(r), int(j)) for j in order],
                None if stamps is None else str(stamps[r]),
            )
        )
    if labels is not None and labels.any():
        rep = series_report(labels, ev.flags)
        ev.metrics.update({f"point_{k}": v for k, v in rep["point"].items()})
        ev.metrics.update({f"event_{k}": v for k, v in rep["event"].items()})
        ev.metrics.update({f"range_{k}": v for k, v in rep["range"].items()})
        ev.metrics["pa_f1"] = rep["point_adjusted_f1"]
    thr = det.threshold_
    ev.series = SeriesView(
        time=stamps,
        values=values,
        channels=channels,
        scores=rows.score,
        threshold=None if thr is None else float(thr.threshold_),
        flags=ev.flags,
        labels=labels,
        shares=shares,
        warmup=det.span - 1,  # type: ignore[attr-defined]
        note=PA_NOTE,
    )
    return ev
