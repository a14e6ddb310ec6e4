"""``anomalia score MODEL DATA --runtime onnx``: score a file with a model's ONNX export in onnxruntime.

The input is read and preprocessed by the same Python code as ``anomalia score`` (the model's table
encoder, series checks and windows, image reading); only the scoring graph runs in onnxruntime, and the
p-values and decisions come from the calibration scores and threshold saved in the export's manifest. The
graph gives scores only, so the output has no ``top_feature_i`` columns.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from .._core import InputError
from ..data import BATCH_ROWS, count_rows, iter_batches, prefetch, table_format
from ..export import OnnxModel
from .images import image_files
from .score import RowProgress, ScoreResult, Writer, write_scored
from .series import read_series

#: What ``anomalia score --runtime`` accepts.
RUNTIMES = ("torch", "onnx")


def score_onnx(
    model: str | Path | OnnxModel,
    data: str | Path,
    out: str | Path,
    *,
    keep: Sequence[str] = (),
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
    progress: RowProgress | None = None,
) -> ScoreResult:
    """Score ``data`` with the ONNX export of ``model`` (a model folder holding ``model.onnx``, or the file).

    Output columns as ``anomalia score`` without explanations: ``row`` (or ``path`` for images), the time
    and ``keep`` columns, ``score``, ``p_value`` and ``is_anomaly``.
    """
    start = time.perf_counter()
    om = model if isinstance(model, OnnxModel) else OnnxModel(model, threads=threads)
    out_path = Path(out)
    if om.input_kind == "images":
        n, flagged = _score_images(om, data, out_path)
        columns = ["path", "score", "p_value", "is_anomaly"]
    else:
        table_format(out_path)
        n, flagged, columns = (_score_series if om.input_kind == "series" else _score_table)(
            om, data, out_path, keep, batch_rows, progress
        )
    seconds = time.perf_counter() - start
    return ScoreResult(str(data), out_path, n, flagged, seconds, om.threshold.spec, columns, kind=om.input_kind)


def _score_table(
    om: OnnxModel, data: str | Path, out: Path, keep: Sequence[str], batch_rows: int, progress: RowProgress | None
) -> tuple[int, int, list[str]]:
    features = om.input_columns
    keep = list(dict.fromkeys(keep))
    extra = [c for c in keep if c not in features]
    total = count_rows(data)

    def encoded() -> Iterator[tuple[int, np.ndarray, pa.RecordBatch]]:
        offset = 0
        types = om.encoder.arrow_types()
        for batch in iter_batches(data, [*features, *extra], batch_rows=batch_rows, column_types=types):
            if batch.num_rows:
                yield offset, om.encode(batch, row_offset=offset), batch
                offset += batch.num_rows

    scored = (
        om.score(X, encoded=True, row_offset=offset).with_columns({c: batch.column(c) for c in keep})
        for offset, X, batch in prefetch(encoded())
    )
    return write_scored(scored, Writer(out), data, progress, total)


def _score_series(
    om: OnnxModel, data: str | Path, out: Path, keep: Sequence[str], batch_rows: int, progress: RowProgress | None
) -> tuple[int, int, list[str]]:
    frame = read_series(data, time_column=om.manifest["series"]["time_column"])
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise InputError(f"--keep {missing[0]!r} is not a column of {data}")
    rows = om.score(frame)
    table = rows.with_columns({c: pa.array(frame[c].to_numpy()) for c in keep}).to_arrow()
    writer = Writer(out)
    ok = False
    try:
        writer.write(table)
        ok = True
    finally:
        writer.close(ok)
    if progress is not None:
        progress(len(rows), len(rows))
    return len(rows), rows.n_flagged, table.schema.names


def _score_images(om: OnnxModel, data: str | Path, out: Path, batch_images: int = 256) -> tuple[int, int]:
    files = image_files(data)
    if not out.parent.exists():
        raise InputError(f"cannot write {out}: the folder {out.parent} does not exist")
    flagged = 0
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "score", "p_value", "is_anomaly"])
        for i in range(0, len(files), batch_images):
            chunk = files[i : i + batch_images]
            rows = om.score([str(f) for f in chunk])
            flagged += rows.n_flagged
            for f, s, pv, fl in zip(chunk, rows.score, rows.p_value, rows.is_anomaly, strict=True):
                writer.writerow([str(f), repr(float(s)), repr(float(pv)), bool(fl)])
    return len(files), flagged
