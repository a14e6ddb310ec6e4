"""Datasets as partitions: a (hive-)partitioned Parquet folder, or a glob of CSV / Parquet files, local or
behind any fsspec URL (``s3://``, ``gs://``, ``memory://``, ...).

A :class:`Partition` is one file: where it is, its format, its hive partition values (``host=a/`` folders)
and, for Parquet, its row count from the footer. It holds no rows, so it travels to workers cheaply; the
worker reads it in record batches (:func:`read_batches`), so a partition may exceed a worker's memory.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._core import InputError, SchemaError
from .._core.optional import require
from ..data import BATCH_ROWS, table_format

#: Files a dataset folder holds that are not data (Spark / Dask / Hive markers and metadata).
_SKIPPED_PREFIXES = ("_", ".")


@dataclass(frozen=True)
class Partition:
    """One file of a dataset: ``path`` on ``fs`` (an fsspec filesystem), its ``format``, its hive partition
    ``values`` (folder ``key=value`` segments, as the column values they stand for) and ``n_rows`` (Parquet:
    from the footer; CSV: None until counted)."""

    path: str
    format: str
    fs: Any = field(repr=False, compare=False)
    values: tuple[tuple[str, Any], ...] = ()
    n_rows: int | None = None

    @property
    def url(self) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return self.path if protocol in ("file", "local") else f"{protocol}://{self.path}"

    def columns(self) -> list[str]:
        """The file's own columns (without the hive partition columns)."""
        with self.fs.open(self.path, "rb") as f:
            if self.format == "parquet":
                return list(pq.read_schema(f).names)
            with pacsv.open_csv(f) as reader:
                return list(reader.schema.names)


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path on it."""
    fsspec = require("fsspec", "dask", purpose="reading datasets by URL")
    try:
        return fsspec.core.url_to_fs(str(url), **(storage_options or {}))
    except (ValueError, ImportError) as exc:
        msg = f"{url}: cannot open this location ({exc}); check the URL or install its fsspec driver"
        raise InputError(msg) from None


def discover(dataset: str, storage_options: dict[str, Any] | None = None) -> list[Partition]:
    """The partitions of ``dataset``: every CSV / Parquet file under a folder (hive ``key=value`` folders give
    columns), the files a glob names, or one file; in path order, which numbers their rows."""
    fs, root = filesystem(dataset, storage_options)
    if any(ch in root for ch in "*?["):
        paths, base = sorted(fs.glob(root)), None
        if not paths:
            raise InputError(f"{dataset}: the pattern matches no file; check the path")
    elif not fs.exists(root):
        raise InputError(f"{dataset}: no such file or folder; check the path")
    elif fs.isdir(root):
        base = root.rstrip("/")
        paths = sorted(p for p in fs.find(root) if not _hidden(p, base))
        if not paths:
            raise InputError(f"{dataset} is a folder without any CSV or Parquet file")
    else:
        paths, base = [root], None
    formats = {p: _format(p) for p in paths}
    paths = [p for p in paths if formats[p] is not None]
    if not paths:
        raise InputError(f"{dataset} holds no .csv or .parquet file")
    kinds = {formats[p] for p in paths}
    if len(kinds) > 1:
        raise InputError(f"{dataset} mixes CSV and Parquet files; give one format (e.g. a glob '*.parquet')")
    values = _hive_values(paths, base)
    parts = []
    for p in paths:
        n_rows = None
        if formats[p] == "parquet":
            try:
                with fs.open(p, "rb") as f:
                    n_rows = int(pq.ParquetFile(f).metadata.num_rows)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{p} could not be read as Parquet ({exc}); check that the file is intact") from None
        parts.append(Partition(p, str(formats[p]), fs, values[p], n_rows))
    return parts


def _hidden(path: str, base: str) -> bool:
    rel = posixpath.relpath(path, base)
    return any(seg.startswith(_SKIPPED_PREFIXES) for seg in rel.split("/"))


def _format(path: str) -> str | None:
    try:
        return table_format(path)
    except InputError:
        return None


def _hive_values(paths: Sequence[str], base: str | None) -> dict[str, tuple[tuple[str, Any], ...]]:
    """Each file's ``key=value`` folder segments, typed per key (integers when every value is one)."""
    raw: dict[str, list[tuple[str, str]]] = {}
    for p in paths:
        segs = posixpath.relpath(posixpath.dirname(p), base).split("/") if base else []
        raw[p] = [tuple(s.split("=", 1)) for s in segs if "=" in s]  # type: ignore[misc]
    keys = {k for pairs in raw.values() for k, _ in pairs}
    ints = {k for k in keys if all(v.lstrip("-").isdigit() for pairs in raw.values() for kk, v in pairs if kk == k)}
    return {p: tuple((k, int(v) if k in ints else v) for k, v in pairs) for p, pairs in raw.items()}


def check_columns(parts: Sequence[Partition], needed: Sequence[str], what: str = "column") -> None:
    """Raise :class:`SchemaError` naming the ``needed`` columns the dataset lacks (first file's schema)."""
    have = [*parts[0].columns(), *(k for k, _ in parts[0].values)]
    missing = [c for c in dict.fromkeys(needed) if c not in have]
    if missing:
        shown = ", ".join(repr(c) for c in have[:10]) + (" ..." if len(have) > 10 else "")
        raise SchemaError(f"{parts[0].url} has no {what}(s) {missing}; its columns are {shown}")


def read_batches(
    part: Partition,
    columns: Sequence[str] | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    column_types: dict[str, pa.DataType] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream ``part`` as record batches of about ``batch_rows`` rows, hive partition columns added.

    The batches are those :func:`anomalia.data.iter_batches` gives for the same local file, so scoring a
    partition on a worker sees exactly what scoring the file locally sees.
    """
    hive = dict(part.values)
    own = None if columns is None else [c for c in columns if c not in hive]
    try:
        with part.fs.open(part.path, "rb") as f:
            if part.format == "parquet":
                pf = pq.ParquetFile(f, pre_buffer=False)
                batches = pf.iter_batches(batch_size=batch_rows, columns=own, use_threads=False)
                yield from (_with_hive(b, hive, columns) for b in batches)
                return
            types = {k: v for k, v in (column_types or {}).items() if k not in hive}
            opts = {
                "parse_options": pacsv.ParseOptions(delimiter="\t" if part.path.endswith(".tsv") else ","),
                "convert_options": pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=True, include_columns=own or []
                ),
                "read_options": pacsv.ReadOptions(
                    block_size=max(1 << 20, min(batch_rows * (len(own) if own else 16) * 12, 1 << 28))
                ),
            }
            with pacsv.open_csv(f, **opts) as reader:
                yield from (_with_hive(b, hive, columns) for b in reader)
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{part.url} could not be read as {part.format.upper()} ({exc})") from None


def _with_hive(batch: pa.RecordBatch, hive: dict[str, Any], columns: Sequence[str] | None) -> pa.RecordBatch:
    if not hive:
        return batch
    arrays = dict(zip(batch.schema.names, batch.columns, strict=True))
    for k, v in hive.items():
        if columns is None or k in columns:
            arrays[k] = pa.array([v] * batch.num_rows)
    names = list(columns) if columns is not None else list(arrays)
    return pa.RecordBatch.from_arrays([arrays[n] for n in names], names=names)


def count_rows(part: Partition) -> int:
    """Rows of a partition (Parquet: the footer; CSV: read through once)."""
    if part.n_rows is not None:
        return part.n_rows
    first = part.columns()[:1]
    return sum(b.num_rows for b in read_batches(part, first, batch_rows=1 << 20))
