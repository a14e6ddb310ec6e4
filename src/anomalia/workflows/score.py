"""``score``: stream a file through a saved model in batches and write one output row per input row.

Reading and encoding run one batch ahead in a background thread (PyArrow and torch release the GIL), so
memory stays bounded by a few batches whatever the size of the file.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._core import InputError, ParameterError
from ..data import BATCH_ROWS, as_labels, count_rows, iter_batches, prefetch, table_format
from ..explain import explain as explain_rows
from ..nn import intra_op_threads
from ..scoring import conformal_p_values
from .model import Model, load_model

#: Which rows get their top contributing features: every row, flagged rows only, or none.
EXPLAIN_OPTIONS = ("all", "flagged", "none")
#: Rows explained in one call at least (batches wait for it, at most ``MAX_PENDING`` of them).
EXPLAIN_ROWS = 16384
MAX_PENDING = 32
#: ``progress(rows_done, rows_total_or_None)`` after every batch.
RowProgress = Callable[[int, int | None], None]


@dataclass
class ScoredBatch:
    """Scores of one batch of input rows, starting at row ``offset`` of the file."""

    offset: int
    X: np.ndarray | None  # the encoded rows; None once the batch waits for explanations (to bound memory)
    scores: np.ndarray
    p_values: np.ndarray
    flags: np.ndarray
    source: pa.RecordBatch  # the columns read besides the features (labels, kept columns)
    top_index: np.ndarray | None = None  # (n, k) input-column indices, -1 where not explained
    top_share: np.ndarray | None = None  # (n, k) their shares of the score, NaN where not explained


def top_contributions(model: Model, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` input columns with the largest shares of each row's score, and those shares."""
    shares = model.input_group_shares(explain_rows(model.detector, X))
    k = min(k, shares.shape[1])
    part = np.argpartition(-shares, k - 1, axis=1)[:, :k] if k < shares.shape[1] else np.argsort(-shares, axis=1)
    vals = np.take_along_axis(shares, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int32), np.take_along_axis(vals, order, axis=1)


def score_batches(
    model: Model,
    data: str | Path,
    *,
    batch_rows: int = BATCH_ROWS,
    explain: str = "flagged",
    top_k: int = 3,
    extra_columns: Sequence[str] = (),
) -> Iterator[ScoredBatch]:
    """Score ``data`` batch by batch; ``extra_columns`` (labels, ids) are read along and passed through."""
    if explain not in EXPLAIN_OPTIONS:
        raise ParameterError(f"explain must be one of {list(EXPLAIN_OPTIONS)}; got {explain!r}")
    det = model.detector
    threshold = det._fitted_threshold()
    calibration = det.calibration_scores_
    features = model.input_columns
    extra_columns = list(dict.fromkeys(extra_columns))
    extra = [c for c in extra_columns if c not in features]
    types = model.encoder.arrow_types()

    def encoded() -> Iterator[tuple[int, np.ndarray, pa.RecordBatch]]:
        offset = 0
        for batch in iter_batches(data, [*features, *extra], batch_rows=batch_rows, column_types=types):
            if batch.num_rows == 0:
                continue
            X = model.encoder.transform(batch, row_offset=offset)
            yield offset, X, batch.select(extra_columns)
            offset += batch.num_rows

    k = min(top_k, len(features))
    pending: list[tuple[ScoredBatch, np.ndarray, np.ndarray]] = []  # (batch, rows to explain, their features)

    def explained() -> list[ScoredBatch]:
        """Explain the rows of every pending batch in one call (small calls are slow), in order."""
        X_all = np.concatenate([x for _, _, x in pending])
        idx, share = top_contributions(model, X_all, k) if X_all.shape[0] else (None, None)
        out, start = [], 0
        for b, rows, _ in pending:
            if rows.size:
                b.top_index = np.full((b.scores.size, k), -1, dtype=np.int32)
                b.top_share = np.full((b.scores.size, k), np.nan, dtype=np.float32)
                b.top_index[rows], b.top_share[rows] = idx[start : start + rows.size], share[start : start + rows.size]
                start += rows.size
            out.append(b)
        pending.clear()
        return out

    for offset, X, source in prefetch(encoded()):
        scores = det.anomaly_score(X)
        flags = threshold.predict(scores)
        batch = ScoredBatch(offset, X, scores, conformal_p_values(calibration, scores), flags, source)
        if explain == "none":
            yield batch
            continue
        rows = np.arange(X.shape[0]) if explain == "all" else np.flatnonzero(flags)
        pending.append((batch, rows, X if explain == "all" else X[rows]))
        batch.X = None
        if sum(r.size for _, r, _ in pending) >= EXPLAIN_ROWS or len(pending) >= MAX_PENDING:
            yield from explained()
    if pending:
        yield from explained()


@dataclass
class ScoreResult:
    """What a score run wrote."""

    data: str
    out: Path
    n_rows: int
    n_flagged: int
    seconds: float
    threshold: str
    columns: list[str]

    @property
    def rows_per_second(self) -> float:
        return self.n_rows / self.seconds if self.seconds > 0 else float("inf")


def _output_batch(model: Model, b: ScoredBatch, top_k: int) -> pa.RecordBatch:
    n = b.scores.size
    cols: dict[str, pa.Array] = {"row": pa.array(np.arange(b.offset, b.offset + n, dtype=np.int64))}
    for name in b.source.schema.names:
        cols[name] = b.source.column(name)
    cols["score"] = pa.array(b.scores)
    cols["p_value"] = pa.array(b.p_values)
    cols["is_anomaly"] = pa.array(b.flags)
    names = pa.array(model.input_columns, pa.string())
    k = min(top_k, len(model.input_columns))
    for i in range(k):
        if b.top_index is None:
            idx = pa.nulls(n, pa.int32())
            share = pa.nulls(n, pa.float32())
        else:
            miss = b.top_index[:, i] < 0
            idx = pa.array(b.top_index[:, i], mask=miss)
            share = pa.array(b.top_share[:, i], mask=miss)
        cols[f"top_feature_{i + 1}"] = pa.DictionaryArray.from_arrays(idx, names)
        cols[f"top_share_{i + 1}"] = share
    return pa.RecordBatch.from_pydict(cols)


def _parquet_options(schema: pa.Schema) -> dict[str, object]:
    """Encode the output for its content; this halves the cost of writing it.

    Scores, p-values and shares are random floats: dictionary encoding, compression and min/max statistics
    find nothing in them. Feature names are dictionary-encoded, and only ``row`` and ``is_anomaly`` have
    statistics (the ones a reader can skip row groups by).
    """
    names = schema.names
    floats = {n for n in names if pa.types.is_floating(schema.field(n).type)}
    return {
        "use_dictionary": [n for n in names if pa.types.is_dictionary(schema.field(n).type)],
        "compression": {n: "none" if n in floats else "snappy" for n in names},
        "write_statistics": [n for n in names if n in ("row", "is_anomaly")],
    }


class _Writer:
    """Parquet or CSV output by suffix, written in a background thread (writing overlaps scoring) to a
    temporary file that is moved into place only when every row is written."""

    def __init__(self, path: Path) -> None:
        self.format = table_format(path)
        self.path = path
        self.tmp = path.with_name(path.name + ".partial")
        self.writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        if path.parent and not path.parent.exists():
            raise InputError(f"cannot write {path}: the folder {path.parent} does not exist")
        self.queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="anomalia-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self._write(batch)
                except BaseException as exc:  # re-raised in the scoring thread
                    self.error = exc

    def _write(self, batch: pa.RecordBatch) -> None:
        if self.format == "csv":
            batch = pa.RecordBatch.from_arrays(
                [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns],
                names=batch.schema.names,
            )
        if self.writer is None:
            try:
                if self.format == "parquet":
                    self.writer = pq.ParquetWriter(self.tmp, batch.schema, **_parquet_options(batch.schema))
                else:
                    self.writer = pacsv.CSVWriter(self.tmp, batch.schema)
            except OSError as exc:
                raise InputError(f"cannot write {self.path}: {exc}") from None
        self.writer.write_batch(batch)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def write(self, batch: pa.RecordBatch) -> None:
        self._check()
        self.queue.put(batch)

    def close(self, ok: bool) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.writer is not None:
            self.writer.close()
        if ok and self.error is None and self.writer is not None:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()
        if ok:
            self._check()


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def score_file(
    model: str | Path | Model,
    data: str | Path,
    out: str | Path,
    *,
    batch_rows: int = BATCH_ROWS,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] = (),
    progress: RowProgress | None = None,
    threads: int | None = None,
) -> ScoreResult:
    """Score every row of ``data`` with a saved model and write ``out`` (``.parquet`` or ``.csv``).

    Output columns: ``row`` (0-based row number in ``data``), the ``keep`` columns, ``score`` (higher =
    more anomalous), ``p_value`` (conformal), ``is_anomaly`` (the model's threshold), and
    ``top_feature_i`` / ``top_share_i`` for i = 1..``top_k``: the input columns with the largest shares of
    the score. ``explain`` says which rows get them: ``"flagged"`` (default: the rows someone will look at),
    ``"all"`` (about half the throughput of scoring alone) or ``"none"``.

    ``threads`` caps torch's threads while scoring; by default one core is left to the threads that read
    and write the files (on 2 cores this is 1.2x faster than letting torch take both).
    """
    start = time.perf_counter()
    m = model if isinstance(model, Model) else load_model(model)
    out_path = Path(out)
    table_format(out_path)
    total = count_rows(data)
    writer = _Writer(out_path)
    n = n_flagged = 0
    ok = False
    columns: list[str] = []
    batches = score_batches(m, data, batch_rows=batch_rows, explain=explain, top_k=top_k, extra_columns=keep)
    try:
        with intra_op_threads(max(1, _available_cores() - 1) if threads is None else threads):
            for b in batches:
                batch = _output_batch(m, b, top_k)
                columns = batch.schema.names
                writer.write(batch)
                n += b.scores.size
                n_flagged += int(b.flags.sum())
                if progress is not None:
                    progress(n, total)
        if n == 0:
            raise InputError(f"{data} has no rows to score")
        ok = True
    finally:
        writer.close(ok)
    return ScoreResult(
        str(data), out_path, n, n_flagged, time.perf_counter() - start, m.detector.threshold_.spec, columns
    )


def labels_of(batch: ScoredBatch, label_column: str) -> np.ndarray:
    """The 0/1 labels of a scored batch's ``label_column``."""
    return as_labels(batch.source.column(label_column), label_column, row_offset=batch.offset)
