"""Text files: fit, score and evaluate a text detector on a log file (one record per line) or on a text
column of a CSV / TSV / Parquet file (``--text-column``). The text column is a detector argument
(``text_column``) saved with the model, so scoring reads new files the same way; a log file needs none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .._core import InputError
from ..data import as_labels, read_table, table_format
from ..data.text import is_line_file, read_lines
from ..model import Model
from ..results import Contribution, Evaluation, TopRow
from .evaluate import TOP_ROWS, build_evaluation
from .fit import FitResult, make_fit_detector
from .score import ScoreResult, Writer

#: Characters of a text shown in the report's table of top anomalies.
SHOWN_CHARS = 200


def read_text_file(
    data: str | Path, *, text_column: str | None, extra: Sequence[str] = ()
) -> tuple[np.ndarray, pa.Table | None]:
    """The texts of ``data`` and, for a table, its ``extra`` columns (labels, kept ids) as a pyarrow table.

    A log or text file (``.log``, ``.txt``) without ``text_column`` is one record per non-empty line; any
    other file is a table whose ``text_column`` holds the texts (missing values become ``""``).
    """
    if text_column is None:
        if not is_line_file(data):
            raise InputError(
                f"{data} is a table: its text column is named when fitting (`anomalia fit {data} --text-column "
                "COLUMN`, saved with the model); log files (.log, .txt) are read one record per line"
            )
        if extra:
            raise InputError(f"{data} is a log file (one record per line): it has no columns {list(extra)}")
        return read_lines(data), None
    table = read_table(data, columns=[text_column, *[c for c in extra if c != text_column]])
    texts = np.asarray(["" if v is None else str(v) for v in table.column(text_column).to_pylist()], dtype=object)
    return texts, table


def fit_text_file(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "text",
    params: Iterable[str] | Mapping[str, Any] | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    threshold: str | None = None,
    contaminated: bool = False,
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> FitResult:
    """Fit text detector ``model`` on the texts of ``data`` and save it to ``out``.

    With ``label_column``, rows labelled 1 (anomaly) are kept out of training.
    """
    start = time.perf_counter()
    detector = make_fit_detector(model, params, threshold=threshold, seed=seed, contaminated=contaminated)
    if detector.input_kind != "text":
        raise InputError(f"detector {model!r} does not read text; use 'text' or 'text-lm'")
    if detector.threshold_rule().needs_labels:
        raise InputError("text models are fitted with a false-alarm threshold; use --threshold false-alarm:ALPHA")
    if text_column is not None:
        detector.set_params(text_column=text_column)
    column = detector.text_column  # type: ignore[attr-defined]
    texts, table = read_text_file(data, text_column=column, extra=[label_column] if label_column else [])
    n_excluded = 0
    if label_column is not None and table is not None:
        labels = as_labels(table.column(label_column), label_column)
        n_excluded = int(labels.sum())
        texts = texts[labels == 0]
        if texts.size == 0:
            raise InputError(f"{data}: every row is labelled as an anomaly in {label_column!r}; fit needs normal rows")
    detector.fit(texts, callback=callback)
    fitted = Model(detector, name=Path(out).name)
    fitted.save(out)
    return FitResult.of(
        fitted, data=data, n_rows=int(texts.size), seconds=time.perf_counter() - start, n_excluded_anomalies=n_excluded
    )


def score_text_file(
    model: str | Path | Model,
    data: str | Path,
    out: str | Path,
    *,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] = (),
    batch_rows: int = 65536,
) -> ScoreResult:
    """Score every text of ``data`` and write ``out`` (.parquet or .csv): ``row`` (0-based line of a log file
    counting only non-empty lines, or row of a table), the ``keep`` columns, ``score``, ``p_value``,
    ``is_anomaly`` and the ``top_k`` spans (words) carrying most of each explained text's score."""
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind != "text":
        raise InputError(f"{model} holds a {m.detector.name} model, which does not score text")
    texts, table = read_text_file(data, text_column=getattr(m.detector, "text_column", None), extra=keep)
    table_format(out)
    writer = Writer(Path(out))
    ok, n_flagged = False, 0
    try:
        for i in range(0, texts.size, batch_rows):
            rows = m.score(texts[i : i + batch_rows], explain=explain, top_k=top_k, row_offset=i)
            if table is not None and keep:
                rows = rows.with_columns({c: table.column(c).slice(i, len(rows)).combine_chunks() for c in keep})
            n_flagged += rows.n_flagged
            writer.write(rows.to_arrow(top_k))
        ok = True
    finally:
        writer.close(ok)
    columns = ["row", *keep, "score", "p_value", "is_anomaly"]
    return ScoreResult(
        str(data), Path(out), int(texts.size), n_flagged, time.perf_counter() - start,
        m.detector.fitted_threshold().spec, columns, kind="text",
    )  # fmt: skip


def evaluate_text_file(
    model: str | Path | Model,
    data: str | Path,
    *,
    label_column: str | None = None,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
    top_n: int = TOP_ROWS,
) -> Evaluation:
    """Score the texts of ``data`` and (with ``label_column``) measure them against the labels: the
    :class:`Evaluation` the report draws; its top rows show each text with the words that drove its score."""
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind != "text":
        raise InputError(f"{model} holds a {m.detector.name} model, which does not score text")
    extra = [label_column] if label_column else []
    texts, table = read_text_file(data, text_column=getattr(m.detector, "text_column", None), extra=extra)
    labels = None
    if label_column is not None and table is not None:
        labels = as_labels(table.column(label_column), label_column)
    scores = m.detector.anomaly_score(texts)
    top = np.argsort(-scores, kind="stable")[:top_n]
    rows = m.score(texts[top], explain="all", top_k=3)
    assert rows.contributions is not None
    tops = []
    for i, r in enumerate(top):
        shown = str(texts[r])[:SHOWN_CHARS]
        spans = rows.contributions.of(i)
        contrib = [Contribution(s, share, shown if j == 0 else "") for j, (s, share) in enumerate(spans)]
        label = None if labels is None else int(labels[r])
        tops.append(TopRow(int(r), float(scores[r]), float(rows.p_value[i]), bool(rows.is_anomaly[i]), label, contrib))
    return build_evaluation(
        m,
        title=f"{m.detector.name} on {Path(data).name}",
        data=str(data),
        scores=scores,
        labels=labels,
        top_rows=tops,
        target_precision=target_precision,
        target_recall=target_recall,
        seconds=time.perf_counter() - start,
    )


__all__ = ["evaluate_text_file", "fit_text_file", "read_text_file", "score_text_file"]
