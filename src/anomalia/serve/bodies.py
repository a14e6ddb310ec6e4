"""Request bodies as the model's input: JSON records (checked field by field), CSV, Parquet and Arrow IPC
tables, PNG / JPEG images and image arrays. Every problem is a :class:`ServiceError` that names the field
and what the model expects, answered with 4xx (never 500).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from ..model import Model

JSON = "application/json"
CSV = "text/csv"
PARQUET = ("application/vnd.apache.parquet", "application/parquet", "application/x-parquet")
ARROW_STREAM = ("application/vnd.apache.arrow.stream", "application/x-arrow-stream")
ARROW_FILE = ("application/vnd.apache.arrow.file", "application/x-arrow")
IMAGE = ("image/png", "image/jpeg")
TABLE_TYPES = (CSV, *PARQUET, *ARROW_STREAM, *ARROW_FILE)


class ServiceError(Exception):
    """An answer other than 200: ``status``, a one-line ``message`` and optionally the ``field`` at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower case, without parameters (JSON when absent)."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower()


def parse_json(body: bytes) -> Any:
    if not body:
        raise ServiceError(422, "the request body is empty; send JSON such as {\"records\": [{...}]}", "body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(422, f"the body is not valid JSON ({exc}); send an object such as {{\"records\": [...]}}",
                           "body") from None


def json_list(doc: Any, key: str, max_items: int) -> list[Any]:
    """``doc[key]`` as a non-empty list of at most ``max_items``."""
    if not isinstance(doc, dict):
        raise ServiceError(422, f"the body must be a JSON object with a {key!r} list; got {type(doc).__name__}", key)
    items = doc.get(key)
    if items is None:
        raise ServiceError(422, f"the body has no {key!r} field; send {{\"{key}\": [...]}}", key)
    if not isinstance(items, list):
        raise ServiceError(422, f"{key!r} must be a list; got {type(items).__name__}", key)
    if not items:
        raise ServiceError(422, f"{key!r} is empty; send at least one", key)
    if len(items) > max_items:
        raise ServiceError(413, f"{len(items):,} {key} in one request; the limit is {max_items:,} (split it)", key)
    return items


# ------------------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Column:
    """One input column the model reads: its name and which JSON values it takes."""

    name: str
    kind: str  # "number", "boolean" or "text"

    @property
    def arrow_type(self) -> pa.DataType:
        return {"number": pa.float64(), "boolean": pa.bool_(), "text": pa.string()}[self.kind]


def model_columns(model: Model) -> list[Column] | None:
    """The named input columns of a table model (None: it was fitted on an unnamed array)."""
    from ..data import TabularEncoder

    if isinstance(model.preprocess, TabularEncoder):
        return [
            Column(c.name, "text" if c.kind == "category" else "boolean" if c.boolean else "number")
            for c in model.preprocess.columns_
        ]
    names = model.detector.schema_.columns
    return [Column(c, "number") for c in names] if names else None


def _value_ok(kind: str, v: Any) -> bool:
    if v is None:
        return True  # missing: the model's encoding imputes it or says it cannot
    if kind == "number":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind == "boolean":
        return isinstance(v, bool)
    return isinstance(v, str)


_EXPECT = {"number": "a number", "boolean": "true or false", "text": "a string"}


@dataclass
class Records:
    """Checked JSON records: one list of values per model column (and per passed-through column)."""

    values: dict[str, list[Any]]
    types: dict[str, pa.DataType]
    n: int

    def to_arrow(self) -> pa.Table:
        return pa.table({k: pa.array(v, self.types[k]) for k, v in self.values.items()})


def check_records(items: list[Any], columns: list[Column], keep: tuple[str, ...] = ()) -> Records:
    """Check each record against the model's columns; the first bad field gives a 422 naming it."""
    names = [c.name for c in columns]
    need = set(names)
    for i, rec in enumerate(items):
        if not isinstance(rec, dict):
            raise ServiceError(
                422, f"records[{i}] must be an object of column: value; got {type(rec).__name__}", f"records[{i}]"
            )
        if not need <= rec.keys():
            missing = [n for n in names if n not in rec]
            raise ServiceError(
                422,
                f"records[{i}] lacks the column(s) {missing[:8]} the model reads (it expects {names[:20]})",
                f"records[{i}].{missing[0]}",
            )
    values: dict[str, list[Any]] = {}
    types: dict[str, pa.DataType] = {}
    for col in columns:
        vals = [rec[col.name] for rec in items]
        ok = col.kind == "number" and all(type(v) is float or type(v) is int or v is None for v in vals)  # fast
        if not ok:
            for i, v in enumerate(vals):
                if not _value_ok(col.kind, v):
                    raise ServiceError(
                        422,
                        f"records[{i}].{col.name} must be {_EXPECT[col.kind]} (the model was fitted on "
                        f"{_EXPECT[col.kind].removeprefix('a ')}s); got {v!r}",
                        f"records[{i}].{col.name}",
                    )
        values[col.name], types[col.name] = vals, col.arrow_type
    for name in keep:
        if name in values:
            continue
        vals = [rec.get(name) for rec in items]
        if all(v is None or isinstance(v, str | int | float | bool) for v in vals):
            values[name] = [None if v is None else str(v) for v in vals]
            types[name] = pa.string()
    return Records(values, types, len(items))


def merge_records(parts: list[Records]) -> pa.Table:
    """One Arrow table of several requests' records (the micro-batch)."""
    if len(parts) == 1:
        return parts[0].to_arrow()
    first = parts[0]
    keys = [k for k in first.values if all(k in p.values for p in parts)]
    return pa.table({k: pa.array([v for p in parts for v in p.values[k]], first.types[k]) for k in keys})


def check_arrays(items: list[Any], n_features: int) -> np.ndarray:
    """Records given as lists of numbers (a model fitted on an unnamed array)."""
    for i, rec in enumerate(items):
        if not isinstance(rec, list) or len(rec) != n_features:
            raise ServiceError(
                422, f"records[{i}] must be a list of {n_features} numbers (the model has no column names)",
                f"records[{i}]",
            )
        for j, v in enumerate(rec):
            if not (isinstance(v, int | float) and not isinstance(v, bool)):
                raise ServiceError(422, f"records[{i}][{j}] must be a number; got {v!r}", f"records[{i}][{j}]")
    return np.asarray(items, dtype=np.float32)


# ------------------------------------------------------------------------------------------------ tables
def read_table(body: bytes, media: str, max_records: int) -> pa.Table:
    """A CSV, Parquet or Arrow IPC body as an Arrow table (at most ``max_records`` rows)."""
    if not body:
        raise ServiceError(422, f"the {media} body is empty", "body")
    try:
        if media == CSV:
            from pyarrow import csv

            table = csv.read_csv(io.BytesIO(body))
        elif media in PARQUET:
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(body))
        elif media in ARROW_STREAM:
            table = pa.ipc.open_stream(body).read_all()
        else:
            table = pa.ipc.open_file(pa.BufferReader(body)).read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ServiceError(422, f"the body cannot be read as {media}: {exc}", "body") from None
    if table.num_rows == 0:
        raise ServiceError(422, "the table has no rows", "body")
    if table.num_rows > max_records:
        raise ServiceError(413, f"{table.num_rows:,} rows in one request; the limit is {max_records:,}", "body")
    return table


def check_table(table: pa.Table, columns: list[Column] | None) -> None:
    """The columns the model reads are there and hold the right kind of values."""
    if columns is None:
        return
    have = set(table.schema.names)
    missing = [c.name for c in columns if c.name not in have]
    if missing:
        raise ServiceError(
            422, f"the table lacks the column(s) {missing[:8]} the model reads (it expects "
            f"{[c.name for c in columns][:20]})", missing[0],
        )
    for c in columns:
        t = table.schema.field(c.name).type
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)
        text = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t) or pa.types.is_null(t)
        if (c.kind != "text" and not numeric) or (c.kind == "text" and not text):
            what = _EXPECT[c.kind].removeprefix("a ")
            raise ServiceError(422, f"column {c.name!r} must hold {what}s; it is {t}", c.name)


# ------------------------------------------------------------------------------------------------ images
def read_image(body: bytes, model: Model) -> np.ndarray:
    """A PNG / JPEG body as a (1, C, H, W) uint8 array, read the way the model's training images were."""
    from PIL import Image, UnidentifiedImageError

    reading = model.image_reading
    try:
        with Image.open(io.BytesIO(body)) as im:
            im = im.convert(reading.mode)
            h, w = reading.size
            if im.size != (w, h):
                im = im.resize((w, h), resample=Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ServiceError(422, f"the body is not a readable image: {exc}", "body") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return arr[None]


def check_images(items: list[Any], model: Model) -> np.ndarray:
    """``{"images": [...]}``: nested lists of shape (C, H, W) or (H, W), values 0..255 (or floats in 0..1)."""
    c, h, w = model.detector.image_shape_  # type: ignore[attr-defined]
    try:
        arr = np.asarray(items, dtype=np.float32)
    except (ValueError, TypeError):
        raise ServiceError(422, "images must be nested lists of numbers of one shape", "images") from None
    if arr.ndim == 3 and c == 1:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1:] != (c, h, w):
        raise ServiceError(
            422, f"images must have shape (n, {c}, {h}, {w}) (or (n, {h}, {w}) for gray); got {arr.shape}", "images"
        )
    if not np.isfinite(arr).all():
        raise ServiceError(422, "images hold non-finite values", "images")
    return arr
