"""Input checks for text: a list, array or Series of strings, or one text column of a DataFrame.

The text counterpart of :func:`anomalia._core.as_float_array`: every text detector, the command line and the
service call :func:`as_texts`, so the same bad input gets the same message everywhere. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import InputError, InputTypeError
from .validation import MIN_FIT_ROWS, Schema


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "to_numpy")


def as_texts(X: Any, *, name: str = "X", column: str | None = None) -> tuple[np.ndarray, Schema]:
    """``X`` as a 1-D object array of ``str`` and its schema (one "feature": the text column's name or None).

    Accepts a list / tuple / 1-D array / pandas Series of strings, an (n, 1) array, or a DataFrame: its
    ``column`` (or its only column). Raises our errors for anything else: None, a single string (a path
    instead of the data), numbers, missing values, an empty input, several columns without ``column``.
    """
    if X is None:
        raise InputTypeError(f"{name} is None; pass a list, array or Series of strings (one text per record)")
    if isinstance(X, str | bytes):
        raise InputTypeError(
            f"{name} is a single string ({X[:40]!r}); pass a list of texts (for a file: "
            "anomalia.data.read_texts(path) or `anomalia fit FILE --text-column COLUMN`)"
        )
    columns: tuple[str, ...] | None = None
    if _is_frame(X):
        names = [str(c) for c in X.columns]
        if column is None and len(names) != 1:
            raise InputError(
                f"{name} is a DataFrame with {len(names)} columns {names[:6]}; say which one holds the text "
                "(text_column='...', or --text-column on the command line)"
            )
        col = names[0] if column is None else column
        if col not in names:
            raise InputError(f"{name} has no text column {col!r}; its columns are {names[:10]}")
        raw = np.asarray(X[X.columns[names.index(col)]].to_numpy(), dtype=object)
        columns = (col,)
    else:
        if hasattr(X, "to_numpy") and hasattr(X, "dtype"):  # a Series (or Index)
            X = X.to_numpy()
        try:
            raw = np.asarray(X, dtype=object)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"{name} could not be read as a list of texts: {exc}") from None
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise InputError(
            f"{name} must be one text per record (a 1-D list or one column); got shape {raw.shape}. "
            "Pass a single text column"
        )
    if raw.shape[0] == 0:
        raise InputError(f"{name} is empty; it needs at least one text")
    kinds = np.fromiter((isinstance(v, str) for v in raw), dtype=bool, count=raw.shape[0])
    if not kinds.all():
        bad = np.flatnonzero(~kinds)
        first = raw[bad[0]]
        missing = first is None or (isinstance(first, float) and first != first)
        what = "missing values (None / NaN)" if missing else f"non-text values (e.g. {type(first).__name__} {first!r})"
        raise InputTypeError(
            f"{name} holds {what} in {bad.size} row(s) (first: {bad[:5].tolist()}); every record must be a "
            "string. Drop those rows or fill them with '' first"
        )
    return raw, Schema(1, columns, ("str",))


def check_text_fit_input(X: Any, *, name: str = "X", column: str | None = None) -> tuple[np.ndarray, Schema]:
    """Checks for fitting a text detector: those of :func:`as_texts`, enough texts, not all the same."""
    texts, schema = as_texts(X, name=name, column=column)
    n = texts.shape[0]
    if n < MIN_FIT_ROWS:
        raise InputError(
            f"{name} has {n} text(s) (n_samples = {n}); fitting needs at least {MIN_FIT_ROWS} normal texts, because "
            "a part is held out to calibrate the threshold"
        )
    if len(set(texts[: min(n, 1000)].tolist())) == 1 and len(set(texts.tolist())) == 1:
        raise InputError(f"every one of the {n} texts of {name} is the same, so there is no normal variation to learn")
    return texts, schema
