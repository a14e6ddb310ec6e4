"""What runs on a worker: the model folder loaded once per process (by path, checked by the manifest's
checksum), and a partition scored by the same steps as local scoring (:meth:`anomalia.model.Model.encode`
then :meth:`~anomalia.model.Model.score` on each record batch, as :func:`anomalia.workflows.score_batches`
does), written as one Parquet part.

Nothing here knows Dask or Spark: the engines call :func:`score_partition` (Dask) or :func:`score_batch`
(Spark's ``mapInArrow``) with plain arguments, and no model object ever travels between processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._core import InputError
from ..bundle import MANIFEST
from ..data import prefetch
from ..model import Model
from ..workflows.score import _parquet_options
from .datasets import Partition, filesystem, read_batches
from .keyed import INDEX, ModelIndex
from .options import ScoreOptions

_LOCK = threading.Lock()
#: (folder, manifest checksum) -> loaded model or index: one load per worker process and model version.
_CACHE: dict[tuple[str, str], Model | ModelIndex] = {}


def local_folder(model: str) -> Path:
    """A model folder (or index folder) as a local path: itself when local, else a copy in a worker cache
    folder named after its manifest's checksum (downloaded once per machine)."""
    fs, path = filesystem(model)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return Path(path)
    name = INDEX if fs.exists(f"{path.rstrip('/')}/{INDEX}") else MANIFEST
    digest = hashlib.sha256(fs.cat_file(f"{path.rstrip('/')}/{name}")).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / "anomalia-models" / digest
    if not target.exists():
        tmp = target.with_name(f"{digest}.{uuid.uuid4().hex}.partial")
        fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
        with contextlib.suppress(OSError):  # another process got it first
            os.replace(tmp, target)
    return target


def load_cached(model: str) -> Model | ModelIndex:
    """The model (or per-key model index) at ``model``, loaded once per process and manifest version."""
    folder = local_folder(model)
    index = folder / INDEX
    marker = index if index.exists() else folder / MANIFEST
    try:
        digest = hashlib.sha256(marker.read_bytes()).hexdigest()
    except OSError:
        return Model.load(folder)  # raises the BundleError that names what is missing
    key = (str(folder.resolve()), digest)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is None:
            hit = ModelIndex.load(folder) if index.exists() else Model.load(folder)
            for old in [k for k in _CACHE if k[0] == key[0]]:  # an older version of the same folder
                del _CACHE[old]
            _CACHE[key] = hit
    return hit


def output_columns(model: Model | ModelIndex, opts: ScoreOptions, keep_types: dict[str, pa.DataType]) -> pa.Schema:
    """The schema of a scored partition: what local ``anomalia score`` writes, ``keep`` columns included."""
    m = model.any_model() if isinstance(model, ModelIndex) else model
    k = min(opts.top_k, len(m.input_columns)) if m.input_kind == "table" else min(opts.top_k, len(m.channels))
    fields = [pa.field("row", pa.int64())]
    fields += [pa.field(c, keep_types[c]) for c in dict.fromkeys(opts.keep)]
    fields += [pa.field("score", pa.float64()), pa.field("p_value", pa.float64()), pa.field("is_anomaly", pa.bool_())]
    for i in range(1, k + 1):
        fields += [
            pa.field(f"top_feature_{i}", pa.dictionary(pa.int32(), pa.string())),
            pa.field(f"top_share_{i}", pa.float32()),
        ]
    return pa.schema(fields)


def score_table_batches(
    model: Model, batches: Iterator[pa.RecordBatch], opts: ScoreOptions, offset: int = 0, *, reader: bool = True
) -> Iterator[pa.Table]:
    """Score record batches with a table model, as local scoring does: encode (one batch ahead, in a reader
    thread; ``reader=False``: in this thread), :meth:`Model.score` with the batch's row offset, kept columns
    passed through. The scores are the same either way."""
    keep = list(dict.fromkeys(opts.keep))

    def encoded() -> Iterator[tuple[int, np.ndarray, pa.RecordBatch]]:
        at = offset
        for batch in batches:
            if batch.num_rows:
                yield at, model.encode(batch, row_offset=at), batch
                at += batch.num_rows

    model.detector.fitted_threshold()
    for at, X, batch in prefetch(encoded()) if reader else encoded():
        rows = model.score(X, explain=opts.explain, top_k=opts.top_k, row_offset=at, encoded=True)
        yield rows.with_columns({c: batch.column(c) for c in keep}).to_arrow(opts.top_k)


def input_columns(model: Model | ModelIndex, opts: ScoreOptions) -> list[str]:
    """The columns a partition is read with: the model's inputs (and key), then the kept ones."""
    if isinstance(model, ModelIndex):
        return list(dict.fromkeys([model.key, *model.input_columns(), *opts.keep]))
    return list(dict.fromkeys([*model.input_columns, *opts.keep]))


def score_tables(
    model: Model | ModelIndex, part: Partition, offset: int, opts: ScoreOptions, *, reader: bool = True
) -> Iterator[pa.Table]:
    """Scored tables of one partition whose first row is row ``offset`` of the dataset (``reader``: read and
    encode in a second thread, as local scoring does)."""
    columns = input_columns(model, opts)
    if isinstance(model, ModelIndex):
        yield from route_batches(model, read_batches(part, columns, batch_rows=opts.batch_rows), opts, offset)
        return
    if model.input_kind == "images":
        raise InputError(f"{model.name!r} is an image model; score images with `anomalia score` without --engine")
    if model.input_kind == "series":
        yield series_table(model, read_batches(part, columns, batch_rows=opts.batch_rows), opts, offset)
        return
    types = model.encoder.arrow_types()
    yield from score_table_batches(
        model, read_batches(part, columns, batch_rows=opts.batch_rows, column_types=types), opts, offset, reader=reader
    )


def route_batches(
    index: ModelIndex, batches: Iterator[pa.RecordBatch], opts: ScoreOptions, offset: int = 0
) -> Iterator[pa.Table]:
    """Score each row with its key's model, rows in input order: table models batch by batch, series models
    on each key's rows of the whole partition (a key's steps form its series)."""
    if index.input_kind == "series":
        table = pa.Table.from_batches(list(batches))
        if table.num_rows:
            yield _route(index, table, opts, offset, series=True)
        return
    at = offset
    for batch in batches:
        if batch.num_rows:
            yield _route(index, pa.Table.from_batches([batch]), opts, at, series=False)
            at += batch.num_rows


def _route(index: ModelIndex, table: pa.Table, opts: ScoreOptions, offset: int, *, series: bool) -> pa.Table:
    keys = table.column(index.key).to_numpy(zero_copy_only=False)
    values, inverse = np.unique(keys.astype(str) if keys.dtype == object else keys, return_inverse=True)
    unknown = [v for v in values if index.lookup(v.item() if hasattr(v, "item") else v) is None]
    if unknown:
        shown = ", ".join(repr(str(v)) for v in unknown[:5])
        raise InputError(
            f"no model for {index.key} {shown} in {index.path}; fit one for it (anomalia fit --key {index.key}) "
            "or leave those rows out"
        )
    parts, where = [], []
    for j, v in enumerate(values):
        rows = np.flatnonzero(inverse == j)
        m = index.lookup(v.item() if hasattr(v, "item") else v)
        assert m is not None
        sub = table.take(pa.array(rows))
        if series:
            frame = sub.to_pandas()
            scored = m.score(frame, explain=opts.explain, top_k=opts.top_k)
        else:
            X = m.encode(sub, row_offset=offset + int(rows[0]))
            scored = m.score(X, explain=opts.explain, top_k=opts.top_k, encoded=True)
        scored.row = (offset + rows).astype(np.int64)
        keep = {c: sub.column(c).combine_chunks() for c in dict.fromkeys(opts.keep)}
        parts.append(scored.with_columns(keep).to_arrow(opts.top_k))
        where.append(rows)
    out = pa.concat_tables(parts, promote_options="permissive").unify_dictionaries().combine_chunks()
    order = np.argsort(np.concatenate(where), kind="stable")
    return out.take(pa.array(order))


def series_table(model: Model, batches: Iterator[pa.RecordBatch], opts: ScoreOptions, offset: int = 0) -> pa.Table:
    """A partition scored as one whole series (windows need their neighbours), as ``anomalia score`` does."""
    table = pa.Table.from_batches(list(batches))
    frame = table.to_pandas()
    rows = model.score(frame, explain=opts.explain, top_k=opts.top_k, row_offset=offset)
    keep = [c for c in dict.fromkeys(opts.keep)]
    return rows.with_columns({c: pa.array(frame[c].to_numpy()) for c in keep}).to_arrow(opts.top_k)


def score_partition(
    model: str,
    part: Partition,
    offset: int,
    opts: ScoreOptions,
    out: str | None = None,
    index: int = 0,
    threads: int | None = None,
) -> Any:
    """Score one partition on this process. With ``out``, write it as ``out/part-{index:05d}.parquet``
    (written to a temporary name, then renamed: a retried task replaces a half-written part, never mixes
    with one) and return its number of rows and flagged rows; without, return the scored rows as pandas.

    ``threads`` is the thread budget of a worker: torch's intra-op threads, and with a budget of one the
    batches are read and encoded in this thread (no reader thread), so a single-threaded worker uses one
    core. None (not on a worker): torch as it is, with the reader thread of local scoring."""
    if threads is not None:
        set_threads(threads)
    m = load_cached(model)
    tables = score_tables(m, part, offset, opts, reader=threads is None or threads > 1)
    if out is None:
        got = list(tables)
        return _to_pandas(pa.concat_tables(got) if got else _empty(m, opts, part))
    fs, root = filesystem(out)
    target = f"{root.rstrip('/')}/part-{index:05d}.parquet"
    tmp = f"{root.rstrip('/')}/.part-{index:05d}.{uuid.uuid4().hex}.partial"
    n = flagged = 0
    writer = None
    try:
        with fs.open(tmp, "wb") as f:
            for t in tables:
                if writer is None:
                    writer = pq.ParquetWriter(f, t.schema, **_parquet_options(t.schema))
                writer.write_table(t)
                n += t.num_rows
                flagged += int(np.asarray(t.column("is_anomaly")).sum())
            if writer is None:
                empty = _empty(m, opts, part)
                writer = pq.ParquetWriter(f, empty.schema, **_parquet_options(empty.schema))
                writer.write_table(empty)
            writer.close()
        fs.mv(tmp, target)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)
    return {"part": index, "rows": n, "flagged": flagged}


def _empty(model: Model | ModelIndex, opts: ScoreOptions, part: Partition) -> pa.Table:
    types = {c: pa.string() for c in opts.keep}
    return output_columns(model, opts, types).empty_table()


def _to_pandas(table: pa.Table) -> Any:
    return table.to_pandas()


def set_threads(n: int) -> None:
    """Torch's intra-op threads on this worker process (its own process: nothing else shares the setting)."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(max(1, int(n)))


def score_batch_stream(
    model: str, batches: Iterator[pa.RecordBatch], opts: ScoreOptions, keep_all: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """Spark's ``mapInArrow`` step: record batches in, scored record batches out (feature names as strings,
    which Spark's schema holds; ``row`` numbers rows within the partition's batches)."""
    m = load_cached(model)
    o = ScoreOptions(opts.explain, opts.top_k, tuple(keep_all), opts.batch_rows)
    if isinstance(m, ModelIndex):
        tables = route_batches(m, batches, o, 0)
    elif m.input_kind == "table":
        tables = score_table_batches(m, batches, o)
    else:
        raise InputError(f"{m.name!r} is a {m.input_kind} model; Spark scoring takes table models")
    for t in tables:
        t = t.drop_columns(["row"])
        cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
        yield from pa.table(cols, names=t.schema.names).to_batches()
