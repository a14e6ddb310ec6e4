"""Label columns from files: 1/0, true/false, or the words anomaly/normal, as a 0/1 array (1 = anomaly)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._core import InputError

#: Column names that usually hold labels (compared lower-case, with spaces and dashes read as ``_``).
LABEL_LIKE_NAMES = frozenset(
    {
        "label",
        "labels",
        "anomaly",
        "anomalies",
        "is_anomaly",
        "is_anomalous",
        "anomalous",
        "anomaly_label",
        "outlier",
        "is_outlier",
        "target",
        "y",
        "class",
        "ground_truth",
        "fraud",
        "is_fraud",
        "attack",
        "is_attack",
    }
)


def label_like_columns(columns: Any) -> list[str]:
    """The names among ``columns`` that look like a label column (``label``, ``is_anomaly``, ``target``, ...)."""
    return [str(c) for c in columns if str(c).strip().lower().replace(" ", "_").replace("-", "_") in LABEL_LIKE_NAMES]


def label_like_warning(columns: Any, where: str) -> str | None:
    """The warning for label-like ``columns`` used as features (None when there are none)."""
    found = label_like_columns(columns)
    if not found:
        return None
    names = ", ".join(repr(c) for c in found)
    return (
        f"column {names} looks like a label but {where} uses it as a feature: a model that reads the answer "
        f"is not measured honestly. Give it as --label-column {found[0]} (or --drop {found[0]}) when fitting"
    )

_WORDS = {
    "1": 1,
    "0": 0,
    "true": 1,
    "false": 0,
    "yes": 1,
    "no": 0,
    "anomaly": 1,
    "normal": 0,
    "outlier": 1,
    "inlier": 0,
}


def as_labels(col: Any, name: str = "label", *, row_offset: int = 0) -> np.ndarray:
    """A label column (pyarrow array or numpy) as int64 0/1; anything else raises :class:`InputError`."""
    arr = col if isinstance(col, pa.Array | pa.ChunkedArray) else pa.array(np.asarray(col))
    if arr.null_count:
        rows = np.flatnonzero(pc.is_null(arr).to_numpy(zero_copy_only=False))
        raise InputError(
            f"label column {name!r} has {rows.size} missing value(s) (first rows: {(rows[:5] + row_offset).tolist()})"
            "; every row needs a label (1 = anomaly, 0 = normal)"
        )
    if pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        values = np.asarray(arr.to_numpy(zero_copy_only=False)).astype(np.float64)
        if not np.isin(values, (0.0, 1.0)).all():
            bad = np.unique(values[~np.isin(values, (0.0, 1.0))])[:5].tolist()
            raise InputError(f"label column {name!r} must hold 0 (normal) and 1 (anomaly); got also {bad}")
        return values.astype(np.int64)
    words = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))).to_pylist()
    try:
        return np.fromiter((_WORDS[w] for w in words), dtype=np.int64, count=len(words))
    except KeyError as exc:
        raise InputError(
            f"label column {name!r} holds {exc.args[0]!r}; use 1/0, true/false or anomaly/normal"
        ) from None
