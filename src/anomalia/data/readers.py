"""CSV and Parquet readers: whole tables for fitting, record batches for scoring files larger than memory.

Every problem with a file (missing, unreadable, a column that is not there) becomes an :class:`InputError`
or :class:`SchemaError` that names the file and says what to do, so the command line can print one line.
"""

from __future__ import annotations

import codecs
import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._core import InputError, SchemaError

#: File suffixes read as each format.
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Rows per record batch when streaming.
BATCH_ROWS = 65536


def table_format(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file suffix (``.csv.gz`` counts as CSV)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst") and len(suffixes) > 1:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise InputError(f"{p}: unknown file type {p.suffix or '(no suffix)'!r}; use a .csv or .parquet file")
    return fmt


@dataclass(frozen=True)
class CsvFile(os.PathLike):
    """A CSV file with how to read it, where detection would guess wrong: pass it wherever a path goes.

    ``encoding`` (default: UTF-8; any Python codec name, e.g. ``"latin-1"``), ``delimiter`` (default: found
    from the header among ``, ; TAB |``) and ``decimal`` (default: ``","`` for a ``;``-file with numbers
    written ``0,5``, else ``"."``); None keeps the detection. ``str()`` and ``os.fspath()`` give the path.
    """

    path: str
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None

    def __post_init__(self) -> None:
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise InputError(
                    f"--encoding {self.encoding!r} is not a known text encoding; use e.g. utf-8, latin-1, cp1252"
                ) from None
        if self.delimiter is not None:
            delimiter = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(self.delimiter, self.delimiter)
            object.__setattr__(self, "delimiter", delimiter)
            if len(delimiter) != 1 or delimiter in "\"\n\r":
                raise InputError(f"--delimiter takes one character (e.g. ';', '|', '\\t'); got {self.delimiter!r}")
        if self.decimal is not None and self.decimal not in (".", ","):
            raise InputError(f"--decimal takes '.' or ','; got {self.decimal!r}")

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def overrides(self) -> bool:
        """True when any of the three is given."""
        return any(v is not None for v in (self.encoding, self.delimiter, self.decimal))


def csv_file(
    path: str | Path | CsvFile, encoding: str | None = None, delimiter: str | None = None, decimal: str | None = None
) -> str | Path | CsvFile:
    """``path`` with the reading options given (unchanged when none is)."""
    if encoding is None and delimiter is None and decimal is None:
        return path
    if isinstance(path, CsvFile):
        return CsvFile(path.path, encoding or path.encoding, delimiter or path.delimiter, decimal or path.decimal)
    return CsvFile(str(path), encoding, delimiter, decimal)


def _given(path: str | Path | CsvFile) -> CsvFile:
    return path if isinstance(path, CsvFile) else CsvFile(str(path))


def _check_exists(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise InputError(f"{p} is a folder; give a .csv or .parquet file")
    return p


#: Bytes read from the start of a CSV file to check its encoding and find its delimiter.
SNIFF_BYTES = 1 << 16
#: Delimiters recognised from a CSV header when the file is not comma-separated.
DELIMITERS = (",", ";", "\t", "|")


def sniff_csv(path: Path, given: CsvFile | None = None) -> tuple[str, str]:
    """(delimiter, decimal point) of a CSV file, from its first lines; a file that is not UTF-8 (or not in
    ``given.encoding``) or has a repeated column name raises :class:`InputError` saying how to fix it.

    The delimiter is the one of ``, ; TAB |`` that splits the header into the most columns and gives the
    same count on the next lines (``.tsv`` files are tab-separated); with ``;`` and numbers written ``0,5``
    the decimal point is a comma (the European convention). ``given`` overrides what it names."""
    given = given or CsvFile(str(path))
    if path.suffix.lower() in (".gz", ".bz2", ".zst"):
        delimiter = "\t" if ".tsv" in [x.lower() for x in path.suffixes] else ","
        return given.delimiter or delimiter, given.decimal or "."
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    encoding = given.encoding or "utf-8"
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the sample
            byte = head[exc.start : exc.start + 1].hex()
            if given.encoding is None:
                raise InputError(
                    f"{path} is not UTF-8 text (byte 0x{byte} at offset {exc.start}); it is probably Latin-1 / "
                    f"Windows-1252: pass --encoding latin-1 (or cp1252; encoding='latin-1' from Python), or "
                    f"convert it first (iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name})"
                ) from None
            raise InputError(
                f"{path} is not {encoding} text (byte 0x{byte} at offset {exc.start}); pass the file's own "
                "encoding with --encoding (e.g. latin-1, cp1252, utf-16)"
            ) from None
        text = head[: exc.start].decode(encoding)
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ",", "."
    if len(lines) > 1 and len(head) == SNIFF_BYTES:
        lines = lines[:-1]  # the last line of a cut sample may be incomplete
    header = lines[0].lstrip("\ufeff")
    if given.delimiter is not None:
        delimiter = given.delimiter
    elif path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        counts = {d: header.count(d) for d in DELIMITERS}
        consistent = [d for d in DELIMITERS if counts[d] and all(line.count(d) == counts[d] for line in lines[1:])]
        delimiter = max(consistent, key=lambda d: counts[d]) if consistent else ","
    names = [n.strip().strip('"') for n in header.split(delimiter)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path}: the header names column(s) {repeated} more than once; give every column its own name"
        )
    decimal = "."
    if delimiter == ";" and any(_DECIMAL_COMMA.search(line) for line in lines[1:]):
        decimal = ","
    return delimiter, given.decimal or decimal


_DECIMAL_COMMA = re.compile(r"(^|;)\s*-?\d+,\d+\s*(;|$)")


def _csv_options(
    path: Path, column_types: dict[str, pa.DataType] | None = None, given: CsvFile | None = None, **read: Any
) -> dict[str, Any]:
    delimiter, decimal = sniff_csv(path, given)
    encoding = given.encoding if given is not None and given.encoding is not None else "utf8"
    return {
        "read_options": pacsv.ReadOptions(encoding=encoding, **read),
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(
            column_types=column_types or {}, strings_can_be_null=True, decimal_point=decimal
        ),
    }


_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'")


def _unreadable(path: Path, exc: BaseException, given: CsvFile | None = None) -> InputError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    bad = _CONVERSION.search(first)
    if bad:
        index, typ, value = int(bad.group(1)), bad.group(2), bad.group(3)
        try:
            name = repr(table_columns(path if given is None else given)[index])
        except (InputError, IndexError):
            name = f"#{index}"
        return InputError(
            f"{path}: column {name} holds {typ} numbers (as when the model was fitted) but also the value "
            f"{value!r}; fix or empty that cell, or drop the column when fitting"
        )
    return InputError(
        f"{path} could not be read as {table_format(path).upper()} ({first}); check that the file is intact"
    )


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a whole CSV or Parquet file (optionally only ``columns``) as a :class:`pyarrow.Table`.

    ``path`` may be a :class:`CsvFile` saying how to read it (encoding, delimiter, decimal point)."""
    given = _given(path)
    p = _check_exists(path)
    fmt = table_format(p)
    if columns is not None:
        check_columns(given, columns)
    try:
        if fmt == "parquet":
            return pq.read_table(p, columns=list(columns) if columns is not None else None)
        opts = _csv_options(p, given=given)
        if columns is not None:
            opts["convert_options"].include_columns = list(columns)
        return pacsv.read_csv(p, **opts)
    except InputError:  # a problem sniff_csv found, already said in full
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(p, exc, given) from None


def table_columns(path: str | Path) -> list[str]:
    """Column names of a file without reading its rows."""
    given = _given(path)
    p = _check_exists(path)
    try:
        if table_format(p) == "parquet":
            return list(pq.read_schema(p).names)
        with pacsv.open_csv(p, **_csv_options(p, given=given)) as reader:
            return list(reader.schema.names)
    except InputError:  # a problem sniff_csv found, already said in full
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(p, exc, given) from None


def check_columns(path: str | Path, needed: Sequence[str], what: str = "column") -> None:
    """Raise :class:`SchemaError` naming the ``needed`` columns that ``path`` lacks."""
    have = table_columns(path)
    missing = [c for c in needed if c not in have]
    if missing:
        shown = ", ".join(repr(c) for c in have[:10]) + (" ..." if len(have) > 10 else "")
        raise SchemaError(f"{path} has no {what}(s) {missing}; its columns are {shown}")


def count_rows(path: str | Path) -> int | None:
    """Number of rows from Parquet metadata; None for CSV (known only after reading it)."""
    p = _check_exists(path)
    if table_format(p) != "parquet":
        return None
    try:
        return int(pq.ParquetFile(p).metadata.num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(p, exc) from None


def iter_batches(
    path: str | Path,
    columns: Sequence[str] | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    column_types: dict[str, pa.DataType] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream ``path`` as record batches of about ``batch_rows`` rows; memory stays bounded by a batch.

    ``column_types`` fixes the types of CSV columns (so that a batch far into the file is parsed like the
    first); Parquet files carry their own types.
    """
    given = _given(path)
    p = _check_exists(path)
    fmt = table_format(p)
    if columns is not None:
        check_columns(given, columns)
    try:
        if fmt == "parquet":
            # memory stays bounded by about one row group; the caller's prefetch thread gives the parallelism
            pf = pq.ParquetFile(p, pre_buffer=False)
            cols = list(columns) if columns is not None else None
            yield from pf.iter_batches(batch_size=batch_rows, columns=cols, use_threads=False)
            return
        # a block of ~48 bytes per value gives batches of roughly ``batch_rows`` rows
        width = len(columns) if columns is not None else 16
        block = max(1 << 20, min(batch_rows * width * 12, 1 << 28))
        opts = _csv_options(p, column_types, given, block_size=block)
        if columns is not None:
            opts["convert_options"].include_columns = list(columns)
        with pacsv.open_csv(p, **opts) as reader:
            yield from reader
    except InputError:  # a problem sniff_csv found, already said in full
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable(p, exc, given) from None


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run ``items`` in a background thread, ``depth`` items ahead, so reading overlaps the consumer's work.

    Exceptions raised while producing are re-raised in the consumer; closing the generator stops the thread.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="anomalia-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
