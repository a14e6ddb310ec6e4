"""Series files: fit, score and evaluate a series detector on a CSV or Parquet file with a timestamp column.

A series is read whole and in file order (windows need their neighbours, so it is not streamed in
batches). The timestamp column, resampling and fill options are detector arguments (``time_column``,
``resample``, ``fill``) and are saved with the model, so scoring reads new files the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core import InputError
from ..bundle import load, read_manifest
from ..data import TabularEncoder, as_labels, read_table, table_format
from ..detectors import SeriesDetector, get_detector, make_detector
from ..metrics.timeseries import PA_NOTE, series_report
from .evaluate import Contribution, Evaluation, TopRow, _build
from .fit import parse_params
from .model import Model

#: The detector of series files when none is named.
DEFAULT_SERIES_MODEL = "cnn-forecaster"


def is_series_model(name: str) -> bool:
    """Whether the registered detector ``name`` reads series."""
    return issubclass(get_detector(name), SeriesDetector)


def is_series_model_folder(path: str | Path) -> bool:
    """Whether a saved model folder holds a series detector."""
    return is_series_model(str(read_manifest(path).get("detector")))


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


@dataclass
class SeriesFitResult:
    """What a series fit did."""

    path: Path
    data: str
    model: str
    n_steps: int
    n_channels: int
    n_train: int
    n_calibration: int
    step: str | None
    threshold: str
    threshold_value: float | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return sum(len(h.get("train_loss", [])) for h in self.history)


def fit_series_file(
    data: str | Path,
    *,
    out: str | Path,
    model: str = DEFAULT_SERIES_MODEL,
    params: Iterable[str] | Mapping[str, Any] | None = None,
    time_column: str | None = None,
    threshold: str | None = None,
    drop: Sequence[str] = (),
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> SeriesFitResult:
    """Fit series detector ``model`` on the normal series in ``data`` and save it to ``out``.

    ``time_column`` names the timestamp column (also settable as ``--set time_column=...``); the other
    columns, except ``drop``, are the channels, modelled jointly. The last ``calibration_fraction`` of the
    series calibrates the threshold.
    """
    start = time.perf_counter()
    if not is_series_model(model):
        raise InputError(
            f"detector {model!r} does not read series; use one of the series detectors, e.g. {DEFAULT_SERIES_MODEL!r}"
        )
    kwargs = parse_params(model, params)
    kwargs.setdefault("random_state", seed)
    if time_column is not None:
        kwargs["time_column"] = time_column
    if threshold is not None:
        kwargs["threshold"] = threshold
    detector = make_detector(model, **kwargs)
    frame = read_series(data, time_column=detector.time_column, drop=drop)
    detector.fit(frame, callback=callback)
    path = detector.save(out)
    thr = detector.threshold_
    return SeriesFitResult(
        path=path,
        data=str(data),
        model=model,
        n_steps=int(frame.shape[0]),
        n_channels=int(detector.n_features_in_),
        n_train=int(detector.n_train_rows_),
        n_calibration=int(detector.calibration_scores_.size),
        step=None if detector.step_ is None else str(detector.step_),
        threshold=detector._threshold_spec().spec,
        threshold_value=None if thr is None else float(thr.threshold_),
        seconds=time.perf_counter() - start,
        history=list(getattr(detector, "history_", [])),
    )


@dataclass
class SeriesScores:
    """Per-step scores of a series file, aligned with its rows."""

    frame: pd.DataFrame  # the file as read
    channels: list[str]
    scores: np.ndarray
    p_values: np.ndarray
    flags: np.ndarray
    shares: np.ndarray  # (n, n_channels)
    threshold: float | None
    seconds: float


def score_series(model: str | Path | SeriesDetector, data: str | Path, *, drop: Sequence[str] = ()) -> SeriesScores:
    """Score every step of the series in ``data`` with a saved series detector."""
    start = time.perf_counter()
    det = model if isinstance(model, SeriesDetector) else load(model)
    if not isinstance(det, SeriesDetector):
        raise InputError(f"{model} is not a series model; score it without --time-column")
    frame = read_series(data, time_column=det.time_column, drop=drop)
    channels = list(det.schema_.columns) if det.schema_.columns else [str(i) for i in range(det.n_features_in_)]
    X = frame
    if det.schema_.columns:  # only the fitted channels (and the time column): other columns may be ids, labels
        missing = [c for c in channels if c not in frame.columns]
        if missing:
            raise InputError(f"{data} lacks the channel column(s) {missing[:5]} the model was fitted on")
        X = frame[[c for c in [det.time_column, *channels] if c is not None]]
    scores = det.anomaly_score(X)
    thr = det.threshold_
    return SeriesScores(
        frame=frame,
        channels=channels,
        scores=scores,
        p_values=det.p_value(X),
        flags=np.zeros(scores.size, bool) if thr is None else thr.predict(scores),
        shares=det.explain(X),
        threshold=None if thr is None else float(thr.threshold_),
        seconds=time.perf_counter() - start,
    )


def score_series_file(
    model: str | Path, data: str | Path, out: str | Path, *, top_k: int = 3, keep: Sequence[str] = ()
) -> SeriesScores:
    """Score a series file and write ``out`` (.parquet or .csv): one row per input row with ``row``, the
    timestamp and ``keep`` columns, ``score``, ``p_value``, ``is_anomaly`` and the ``top_k`` channels with
    the largest shares of the step's score (``top_feature_i`` / ``top_share_i``)."""
    res = score_series(model, data)
    det = load(model)
    fmt = table_format(out)
    cols: dict[str, Any] = {"row": np.arange(res.scores.size)}
    for c in [det.time_column, *keep]:
        if c is not None:
            if c not in res.frame.columns:
                raise InputError(f"--keep {c!r} is not a column of {data}")
            cols[c] = res.frame[c].to_numpy()
    cols.update(score=res.scores, p_value=res.p_values, is_anomaly=res.flags)
    k = min(top_k, res.shares.shape[1])
    order = np.argsort(-res.shares, axis=1, kind="stable")[:, :k]
    for i in range(k):
        cols[f"top_feature_{i + 1}"] = np.asarray(res.channels, dtype=object)[order[:, i]]
        cols[f"top_share_{i + 1}"] = np.take_along_axis(res.shares, order[:, i : i + 1], axis=1)[:, 0]
    table = pd.DataFrame(cols)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False)
    return res


def evaluate_series_file(
    model: str | Path,
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
    (``pa_f1``, optimistic) alongside; ``extras["series"]`` holds what the report's series view draws.
    """
    start = time.perf_counter()
    det = load(model)
    res = score_series(det, data)
    labels = None
    if label_column is not None:
        if label_column not in res.frame.columns:
            raise InputError(
                f"{data} has no label column {label_column!r}; its columns are {list(res.frame.columns)[:10]}"
            )
        labels = as_labels(np.asarray(res.frame[label_column]), label_column)
    encoder = TabularEncoder.from_dict(
        {
            "encoder_version": 1,
            "max_categories": 1,
            "impute": None,
            "columns": [{"name": c, "kind": "numeric", "fill": None, "categories": []} for c in res.channels],
        }
    )
    values = res.frame[res.channels].to_numpy(dtype=np.float64)
    top = np.argsort(-res.scores, kind="stable")[:top_n]
    ev = _build(
        Model(det, encoder),
        title=f"{det.name} on {Path(data).name}",
        data=str(data),
        scores=res.scores,
        labels=labels,
        top=(top[:0], values[:0].astype(np.float32), None, {}),  # rows are explained from their windows below
        target_precision=target_precision,
        target_recall=target_recall,
        seconds=time.perf_counter() - start,
    )
    for r in top:
        order = np.argsort(-res.shares[r], kind="stable")[:3]
        contrib = [Contribution(res.channels[j], float(res.shares[r, j]), float(values[r, j])) for j in order]
        ev.top_rows.append(
            TopRow(
                int(r),
                float(res.scores[r]),
                float(res.p_values[r]),
                bool(res.flags[r]),
                None if labels is None else int(labels[r]),
                contrib,
            )
        )
    if labels is not None and labels.any():
        rep = series_report(labels, ev.flags)
        ev.metrics.update({f"point_{k}": v for k, v in rep["point"].items()})
        ev.metrics.update({f"event_{k}": v for k, v in rep["event"].items()})
        ev.metrics.update({f"range_{k}": v for k, v in rep["range"].items()})
        ev.metrics["pa_f1"] = rep["point_adjusted_f1"]
    time_values = None if det.time_column is None else pd.to_datetime(res.frame[det.time_column]).to_numpy()
    ev.extras["series"] = {
        "time": time_values,
        "values": values,
        "channels": res.channels,
        "scores": res.scores,
        "threshold": res.threshold,
        "flags": ev.flags,
        "labels": labels,
        "shares": res.shares,
        "warmup": det.span - 1,
        "note": PA_NOTE,
    }
    return ev
