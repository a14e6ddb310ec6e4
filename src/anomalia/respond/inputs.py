"""Reading what :meth:`Responder.process` is given: the entity of each row, the event times, the input
values of flagged rows (pandas, pyarrow, a list of dicts or a dict of columns), all made JSON-safe."""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

from .._core import InputError
from ..results import ScoredRows

__all__ = ["entities_of", "event_times", "input_rows", "jsonable"]


def jsonable(v: Any) -> Any:
    """A JSON-safe version of a value: numpy scalars to Python, NaN / inf to None, times to ISO text."""
    if v is None or isinstance(v, str | bool):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int):
        return v
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, np.datetime64):
        return str(v)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _column(inputs: Any, name: str, n: int) -> list[Any] | None:
    """Column ``name`` of ``inputs`` as a list of n values, or None when absent."""
    if inputs is None:
        return None
    if hasattr(inputs, "column_names") and hasattr(inputs, "column"):  # pyarrow RecordBatch / Table
        return inputs.column(name).to_pylist() if name in inputs.column_names else None
    if hasattr(inputs, "columns") and hasattr(inputs, "iloc"):  # pandas DataFrame
        if name in inputs.columns:
            return list(inputs[name].to_numpy())
        if getattr(inputs.index, "name", None) == name:
            return list(inputs.index)
        return None
    if isinstance(inputs, Mapping):
        return list(inputs[name]) if name in inputs else None
    if isinstance(inputs, Sequence) and n and isinstance(inputs[0], Mapping):
        return [r.get(name) for r in inputs] if name in inputs[0] else None
    raise InputError(
        f"inputs: expected a pandas DataFrame, a pyarrow table, a list of dicts or a dict of columns; "
        f"got {type(inputs).__name__}"
    )


def _length(inputs: Any) -> int | None:
    if inputs is None:
        return None
    if hasattr(inputs, "num_rows"):
        return int(inputs.num_rows)
    if isinstance(inputs, Mapping):
        return len(next(iter(inputs.values()))) if inputs else 0
    return len(inputs)


def entities_of(scored: ScoredRows, inputs: Any, entity: Sequence[Any] | None, column: str | None) -> list[Any]:
    """Each row's entity key (None without one): ``entity`` if given, else the ``column`` of ``inputs`` (or
    of the scored rows' passed-through columns)."""
    n = len(scored)
    m = _length(inputs)
    if m is not None and m != n:
        raise InputError(f"inputs: {m} rows for {n} scored rows; give the input rows the scores were made of")
    if entity is not None:
        if isinstance(entity, str):
            raise InputError("entity: expected one value per row (a list); name a column in the config's 'entity'")
        values = list(entity)
        if len(values) != n:
            raise InputError(f"entity: {len(values)} values for {n} scored rows")
        return [None if v is None else str(jsonable(v)) for v in values]
    if column is None:
        return [None] * n
    values_or_none = _column(inputs, column, n)
    if values_or_none is None and column in scored.columns:
        values_or_none = scored.columns[column].to_pylist()
    if values_or_none is None:
        raise InputError(
            f"entity: the column {column!r} is not in the input rows; pass inputs= with it (or fix 'entity')"
        )
    return [None if v is None else str(jsonable(v)) for v in values_or_none]


def event_times(scored: ScoredRows, now: float) -> np.ndarray:
    """Epoch seconds of each row: its timestamp when the rows have one, else ``now``."""
    n = len(scored)
    t = scored.time
    if t is None:
        return np.full(n, now)
    arr = np.asarray(t)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    if np.issubdtype(arr.dtype, np.number):
        return arr.astype(np.float64)
    try:
        return (
            np.array([np.datetime64(str(x).replace("Z", "")) for x in arr], dtype="datetime64[ns]").astype(np.int64)
            / 1e9
        )
    except ValueError:
        raise InputError("time: the rows' timestamps cannot be read as times") from None


def input_rows(inputs: Any, idx: Sequence[int]) -> list[dict[str, Any]]:
    """The input values of rows ``idx`` as JSON-safe dicts (empty dicts without inputs)."""
    if inputs is None or not len(idx):
        return [{} for _ in idx]
    if hasattr(inputs, "column_names") and hasattr(inputs, "take"):
        rows = inputs.take(np.asarray(idx, dtype=np.int64)).to_pylist()
    elif hasattr(inputs, "iloc"):
        rows = inputs.iloc[list(idx)].to_dict("records")
    elif isinstance(inputs, Mapping):
        rows = [{k: v[i] for k, v in inputs.items()} for i in idx]
    else:
        rows = [dict(inputs[i]) for i in idx]
    return [{str(k): jsonable(v) for k, v in r.items()} for r in rows]


def now() -> float:
    return _time.time()
