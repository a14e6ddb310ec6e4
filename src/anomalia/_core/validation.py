"""The one place where input data is checked.

Detectors, the command line and the service all call these functions, so the same bad input gets the same
message everywhere. pandas is never imported here: DataFrames are recognised by their ``columns`` and
``dtypes`` attributes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import exceptions
from .exceptions import InputError, InputTypeError, SchemaError

#: At least this many rows are needed to fit: a part is held out for calibration and early stopping.
MIN_FIT_ROWS = 4


@dataclass(frozen=True)
class Schema:
    """What the fitted data looked like: column names (None for arrays), count and dtypes."""

    n_features: int
    columns: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features,
            "columns": None if self.columns is None else list(self.columns),
            "dtypes": list(self.dtypes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        cols = d.get("columns")
        return cls(int(d["n_features"]), None if cols is None else tuple(cols), tuple(d.get("dtypes", ())))


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "to_numpy")


def _frame_to_array(X: Any, name: str) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    columns = tuple(str(c) for c in X.columns)
    dtypes = tuple(str(d) for d in X.dtypes)
    bad = [c for c, d in zip(columns, X.dtypes, strict=True) if getattr(d, "kind", "O") not in "biuf"]
    if bad:
        shown = ", ".join(f"{c!r} ({X[c].dtype})" for c in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise InputTypeError(
            f"{name} has non-numeric columns: {shown}. Encode them as numbers first "
            "(e.g. pandas.get_dummies for categories) or drop them; or use anomalia.fit(df, model), which encodes "
            "them as the command line does and saves the encoding in the model."
        )
    return X.to_numpy(dtype=np.float32), columns, dtypes


def as_float_array(
    X: Any, *, name: str = "X", ndim: int = 2, check_finite_values: bool = True
) -> tuple[np.ndarray, Schema]:
    """Convert ``X`` (ndarray, DataFrame or nested lists) to a C-contiguous float32 array and its schema.

    Checks type, dimensions, emptiness and (unless ``check_finite_values`` is False, for callers that
    check their outputs instead) finiteness. Does not check the schema against a fitted one
    (see :func:`check_schema`).
    """
    if X is None:
        raise InputTypeError(f"{name} is None; pass a numeric array or DataFrame of shape (n_rows, n_features)")
    if isinstance(X, str | bytes):
        raise InputTypeError(f"{name} is a string ({X[:40]!r}); pass the data, not a path (read it first)")
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise InputTypeError(
            f"{name} is a sparse matrix ({type(X).__name__}); sparse input is not supported. "
            "Convert it with X.toarray() if it fits in memory"
        )
    columns: tuple[str, ...] | None = None
    if _is_frame(X):
        arr, columns, dtypes = _frame_to_array(X, name)
    else:
        try:
            raw = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"{name} could not be read as an array: {exc}") from None
        if raw.dtype.kind == "O":  # numbers held as Python objects convert; anything else is an error below
            with contextlib.suppress(TypeError, ValueError):
                raw = raw.astype(np.float64)
        if raw.dtype.kind not in "biuf":
            raise InputTypeError(
                f"{name} must hold numbers; got dtype {raw.dtype} (strings or objects). Encode categories as "
                "numbers first, or pass a DataFrame and use the command line, which encodes them."
            )
        arr = np.ascontiguousarray(raw, dtype=np.float32)
        dtypes = (str(raw.dtype),)
    if arr.ndim != ndim:
        hint = ""
        if ndim == 2 and arr.ndim == 1:
            hint = " Use X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single row."
        raise InputError(f"{name} must be {ndim}-D (n_rows, n_features); got {arr.ndim}-D of shape {arr.shape}.{hint}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); it needs at least one row and one feature")
    if check_finite_values:
        check_finite(arr, name=name, columns=columns)
    n_features = int(np.prod(arr.shape[1:]))
    if len(dtypes) == 1:
        dtypes = dtypes * (n_features if ndim == 2 else 1)
    return arr, Schema(n_features, columns, dtypes)


def check_finite(arr: np.ndarray, *, name: str = "X", columns: tuple[str, ...] | None = None) -> None:
    """Raise :class:`InputError` naming the first rows and columns with NaN or inf."""
    if np.isfinite(arr).all():
        return
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1))
    rows = np.flatnonzero(bad.any(axis=1))
    cols = np.flatnonzero(bad.any(axis=0))
    col_names = [columns[c] if columns else str(c) for c in cols[:5]]
    raise InputError(
        f"{name} has NaN or infinite values in {len(rows)} row(s) (first: {rows[:5].tolist()}) and "
        f"column(s) {col_names}{' ...' if len(cols) > 5 else ''}. Drop or impute them first "
        "(the command line has --impute median)."
    )


def check_fit_input(X: Any, *, name: str = "X", ndim: int = 2) -> tuple[np.ndarray, Schema]:
    """Input checks for ``fit``: those of :func:`as_float_array`, enough rows, not every column constant."""
    arr, schema = as_float_array(X, name=name, ndim=ndim)
    n = arr.shape[0]
    if n < MIN_FIT_ROWS:
        raise InputError(
            f"{name} has {n} sample(s) (n_samples = {n}); fitting needs at least {MIN_FIT_ROWS} rows of normal data, "
            "because a part is held out to calibrate the threshold"
        )
    flat = arr.reshape(n, -1)
    if np.all(flat.max(axis=0) == flat.min(axis=0)):
        raise InputError(
            f"every column of {name} is constant across its {n} rows, so there is no normal variation to learn; "
            "check that the right columns were passed"
        )
    return arr, schema


def check_schema(schema: Schema, fitted: Schema, *, name: str = "X") -> None:
    """Raise :class:`SchemaError` when ``schema`` differs from the one recorded at fit."""
    if schema.n_features != fitted.n_features:
        raise SchemaError(
            f"{name} has {schema.n_features} features but the detector was fitted on {fitted.n_features}"
            + (f" (columns {list(fitted.columns)[:8]})" if fitted.columns else "")
            + "; pass the same columns as at fit"
        )
    if schema.columns is not None and fitted.columns is not None and schema.columns != fitted.columns:
        missing = [c for c in fitted.columns if c not in schema.columns]
        extra = [c for c in schema.columns if c not in fitted.columns]
        detail = f"missing {missing[:5]}, unexpected {extra[:5]}" if missing or extra else "same names, other order"
        raise SchemaError(
            f"{name} columns differ from those seen at fit ({detail}); select them as "
            f"X[{list(fitted.columns)[:5]}{' ...' if len(fitted.columns) > 5 else ''}]"
        )


def check_is_fitted(estimator: Any, attribute: str = "schema_") -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the learned ``attribute``."""
    if not hasattr(estimator, attribute):
        name = type(estimator).__name__
        raise exceptions.NotFittedError(f"this {name} is not fitted yet; call fit(X_normal) before using it")


def check_labels(y: Any, n: int, *, name: str = "y") -> np.ndarray:
    """Labels as a 0/1 int array of length ``n`` (1 = anomaly)."""
    if y is None:
        raise InputError(f"{name} is None; labels (1 = anomaly, 0 = normal) are needed here")
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"{name} must be 1-D with {n} labels (one per row); got shape {arr.shape}")
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
        vals = np.unique(arr)[:5].tolist()
        raise InputError(f"{name} must hold only 0 (normal) and 1 (anomaly); got values {vals}")
    return arr.astype(np.int64)
