"""Mixed tabular data to the numeric matrix the detectors take, and back to column names for explanations.

Numbers and booleans pass through as float32; text and categorical columns with at most ``max_categories``
distinct values become one-hot columns ``name=value``. Missing values are an error unless ``impute`` is
``"median"`` (numbers get the median of the fitted data, text columns its most frequent value). The learned
encoding is plain JSON (:meth:`TabularEncoder.to_dict`), saved beside the model; nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._core import InputError, InputTypeError, NotFittedError, ParameterError, SchemaError

#: Default most distinct values a text column may have to be one-hot encoded.
MAX_CATEGORIES = 50
IMPUTE_OPTIONS = (None, "median")
ENCODER_VERSION = 1

Frame = Any  # pyarrow.Table, pyarrow.RecordBatch or pandas.DataFrame


@dataclass
class ColumnCode:
    """How one input column is encoded: ``kind`` is ``"numeric"`` or ``"category"``."""

    name: str
    kind: str
    fill: float | str | None = None  # value used for missing entries when imputing
    categories: list[str] = field(default_factory=list)
    boolean: bool = False  # true/false values (read from CSV as booleans, encoded as 1/0)

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "category" else 1

    def feature_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.categories] if self.kind == "category" else [self.name]


def as_arrow(data: Frame) -> pa.Table | pa.RecordBatch:
    """A pyarrow Table/RecordBatch for ``data`` (pandas DataFrames are converted, index dropped)."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return data
    if hasattr(data, "columns") and hasattr(data, "dtypes"):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InputTypeError(f"a column mixes types that cannot be read as one ({exc}); clean it first") from None
    raise InputTypeError(f"expected a table (pyarrow Table or pandas DataFrame); got {type(data).__name__}")


def _kind(name: str, typ: pa.DataType) -> str:
    if pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_decimal(typ):
        return "numeric"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_dictionary(typ):
        return "category"
    if pa.types.is_null(typ):
        raise InputError(f"column {name!r} is empty (every value is missing); drop it")
    if pa.types.is_temporal(typ):
        raise InputTypeError(
            f"column {name!r} holds dates or times ({typ}); drop it (--drop {name}), or, for a time series, "
            f"name it as the time column (--time-column {name})"
        )
    raise InputTypeError(f"column {name!r} has type {typ}, which cannot be encoded as numbers; drop it (--drop {name})")


def _numbers(col: Any) -> np.ndarray:
    """float32 values of a numeric column, NaN where missing (no copy for float32 without nulls)."""
    if col.type != pa.float32():
        col = pc.cast(col, pa.float32())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float32)


def _strings(col: Any) -> Any:
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, pa.string())
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _non_numbers(col: Any) -> tuple[int, list[tuple[int, str]]]:
    """(count of values that parse as numbers, the first few (row, value) that do not) of a text column."""
    n_numbers, bad = 0, []
    for i, v in enumerate(_strings(col).to_pylist()):
        if v is None or not str(v).strip():
            continue
        try:
            float(str(v).replace(" ", ""))
            n_numbers += 1
        except ValueError:
            if len(bad) < 3:
                bad.append((i, str(v)))
    return n_numbers, bad


def _rows_text(rows: np.ndarray, offset: int) -> str:
    return f"{rows.size} row(s) (first: {(rows[:5] + offset).tolist()})"


class TabularEncoder:
    """Encode mixed tables (numbers, booleans, text) as float32 features; fitted state is JSON.

    Parameters
    ----------
    max_categories : int
        Most distinct values a text column may hold; more gives an error naming the column.
    impute : {None, "median"}
        None: missing values are an error. ``"median"``: numbers get the fitted median, text columns the
        most frequent value.
    exclude : sequence of str
        Columns to leave out (labels, identifiers).
    """

    def __init__(self, max_categories: int = MAX_CATEGORIES, impute: str | None = None, exclude: Sequence[str] = ()):
        if impute not in IMPUTE_OPTIONS:
            raise ParameterError(f"impute must be one of {list(IMPUTE_OPTIONS)}; got {impute!r}")
        if not isinstance(max_categories, int) or isinstance(max_categories, bool) or max_categories < 1:
            raise ParameterError(f"max_categories must be a positive integer; got {max_categories!r}")
        self.max_categories = max_categories
        self.impute = impute
        self.exclude = tuple(exclude)

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Frame) -> TabularEncoder:
        """Learn column kinds, categories and fill values from ``data``."""
        table = as_arrow(data)
        names = [n for n in table.schema.names if n not in self.exclude]
        if not names:
            raise InputError("no feature columns are left after excluding " + str(list(self.exclude)))
        if table.num_rows == 0:
            raise InputError("the data has no rows")
        codes = []
        for name in names:
            col = table.column(name)
            kind = _kind(name, col.type)
            code = ColumnCode(name, kind, boolean=pa.types.is_boolean(col.type))
            n_missing = col.null_count
            if kind == "numeric":
                values = _numbers(col)
                finite = np.isfinite(values)
                n_missing = int((~finite).sum())
                if n_missing == values.size:
                    raise InputError(f"column {name!r} has no finite values; drop it (--drop {name})")
                code.fill = float(np.median(values[finite])) if n_missing else float(np.median(values))
            else:
                counts = pc.value_counts(_strings(col).drop_null())
                values_ = counts.field("values").to_pylist()
                freq = counts.field("counts").to_numpy()
                if len(values_) > self.max_categories:
                    n_numbers, bad = _non_numbers(col)
                    if bad and n_numbers >= 0.9 * (len(col) - col.null_count):
                        shown = ", ".join(f"row {r}: {v!r}" for r, v in bad)
                        raise InputError(
                            f"column {name!r} holds numbers except in a few cells ({shown}; rows count from 0 "
                            "after the header); fix or empty those cells (empty cells need --impute median), "
                            f"or drop the column (--drop {name})"
                        )
                    raise InputError(
                        f"column {name!r} holds text with {len(values_)} distinct values, more than the "
                        f"{self.max_categories} that are one-hot encoded; drop it (--drop {name}) if it is an "
                        "identifier, or raise --max-categories"
                    )
                if not values_:
                    raise InputError(f"column {name!r} has no values; drop it (--drop {name})")
                code.categories = sorted(values_)
                code.fill = values_[int(np.argmax(freq))]
            if n_missing and self.impute is None:
                raise InputError(
                    f"column {name!r} has {n_missing} missing value(s); fill them in the file, drop the column "
                    f"(--drop {name}), or pass --impute median"
                )
            codes.append(code)
        self.columns_ = codes
        return self

    # ------------------------------------------------------------------ properties
    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise NotFittedError("this TabularEncoder is not fitted yet; call fit(table) first")

    @property
    def input_columns(self) -> list[str]:
        """The columns a file must have to be encoded."""
        self._check_fitted()
        return [c.name for c in self.columns_]

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded features (``name`` for numbers, ``name=value`` for one-hot columns)."""
        self._check_fitted()
        return [f for c in self.columns_ for f in c.feature_names()]

    @property
    def groups(self) -> np.ndarray:
        """For each encoded feature, the index of the input column it comes from."""
        self._check_fitted()
        return np.repeat(np.arange(len(self.columns_)), [c.width for c in self.columns_])

    def arrow_types(self) -> dict[str, pa.DataType]:
        """Column types to read a CSV with, so that every batch is parsed like the fitted data."""
        self._check_fitted()
        return {
            c.name: pa.string() if c.kind == "category" else pa.bool_() if c.boolean else pa.float64()
            for c in self.columns_
        }

    # ------------------------------------------------------------------ transforming
    def transform(self, data: Frame, *, row_offset: int = 0) -> np.ndarray:
        """Encode ``data`` into a C-contiguous float32 array (n_rows, n_features).

        Columns not used at fit are ignored; a missing column or a text column where numbers were fitted
        raises :class:`SchemaError`. Text values not seen at fit encode as all zeros in their one-hot
        group (which usually raises the anomaly score). ``row_offset`` numbers rows in error messages.
        """
        self._check_fitted()
        table = as_arrow(data)
        have = set(table.schema.names)
        missing = [c.name for c in self.columns_ if c.name not in have]
        if missing:
            raise SchemaError(
                f"the data lacks column(s) {missing[:8]}{' ...' if len(missing) > 8 else ''} that the model was "
                "fitted on; give a file with the same columns as the training data"
            )
        n = table.num_rows
        # one contiguous row per feature, transposed once at the end: much faster than strided column writes
        rows = np.empty((sum(c.width for c in self.columns_), n), dtype=np.float32)
        j = 0
        for code in self.columns_:
            col = table.column(code.name)
            if code.kind == "numeric":
                rows[j] = self._numeric(code, col, row_offset)
            else:
                self._one_hot(code, col, rows[j : j + code.width], row_offset)
            j += code.width
        return np.ascontiguousarray(rows.T)

    def _numeric(self, code: ColumnCode, col: Any, row_offset: int) -> np.ndarray:
        if _kind(code.name, col.type) != "numeric":
            what = "text" if _kind(code.name, col.type) == "category" else str(col.type)
            _, bad = _non_numbers(col) if what == "text" else (0, [])
            if bad:
                row, value = bad[0]
                example = f"first non-number {value!r} in row {row + row_offset}"
            else:
                example = f"e.g. {next((v for v in col.to_pylist() if v is not None), None)!r}"
            raise SchemaError(
                f"column {code.name!r} held numbers at fit but holds {what} here ({example}); "
                "the file's schema differs from the model's"
            )
        values = _numbers(col)
        bad = ~np.isfinite(values)
        if bad.any():
            if self.impute is None:
                where = _rows_text(np.flatnonzero(bad), row_offset)
                raise InputError(
                    f"column {code.name!r} has missing or infinite values in {where}; fill them, or refit the "
                    "model with --impute median"
                )
            values = np.where(bad, np.float32(code.fill), values)  # values may be a read-only view
        return values

    def _one_hot(self, code: ColumnCode, col: Any, block: np.ndarray, row_offset: int) -> None:
        """Fill ``block`` (categories x rows) with the one-hot code of ``col``."""
        strings = _strings(col)
        block[:] = 0.0
        idx = pc.index_in(strings, value_set=pa.array(code.categories, pa.string()))
        idx = np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if strings.null_count:
            nulls = np.asarray(pc.is_null(strings).to_numpy(zero_copy_only=False), dtype=bool)
            if self.impute is None:
                raise InputError(
                    f"column {code.name!r} has missing values in {_rows_text(np.flatnonzero(nulls), row_offset)}; "
                    "fill them, or refit the model with --impute median"
                )
            idx[nulls] = code.categories.index(str(code.fill))
        seen = idx >= 0
        block[idx[seen], np.flatnonzero(seen)] = 1.0

    def fit_transform(self, data: Frame) -> np.ndarray:
        return self.fit(data).transform(data)

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict[str, Any]:
        """JSON-able state (see :meth:`from_dict`)."""
        self._check_fitted()
        return {
            "encoder_version": ENCODER_VERSION,
            "max_categories": self.max_categories,
            "impute": self.impute,
            "exclude": list(self.exclude),
            "columns": [
                {"name": c.name, "kind": c.kind, "fill": c.fill, "categories": c.categories, "boolean": c.boolean}
                for c in self.columns_
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TabularEncoder:
        """Rebuild a fitted encoder from :meth:`to_dict`; raises :class:`InputError` on a damaged state."""
        try:
            if d["encoder_version"] != ENCODER_VERSION:
                raise InputError(f"encoder format {d['encoder_version']!r} is not {ENCODER_VERSION}; refit the model")
            enc = cls(int(d["max_categories"]), d["impute"], tuple(d.get("exclude", ())))
            enc.columns_ = [
                ColumnCode(
                    str(c["name"]), str(c["kind"]), c["fill"], [str(v) for v in c["categories"]], bool(c.get("boolean"))
                )
                for c in d["columns"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"the saved preprocessing is damaged ({exc}); refit the model") from None
        if any(c.kind not in ("numeric", "category") for c in enc.columns_):
            raise InputError("the saved preprocessing names an unknown column kind; refit the model")
        return enc

    @classmethod
    def pass_through(cls, columns: Sequence[str]) -> TabularEncoder:
        """A fitted encoder that reads the numeric ``columns`` as they are (a detector fitted on a DataFrame)."""
        enc = cls(max_categories=1)
        enc.columns_ = [ColumnCode(str(c), "numeric") for c in columns]
        return enc

    def group_shares(self, shares: np.ndarray) -> np.ndarray:
        """Feature shares (n, n_features) summed per input column (a one-hot group adds up)."""
        groups = self.groups
        if groups.size == len(self.columns_):
            return shares
        out = np.zeros((shares.shape[0], len(self.columns_)), dtype=shares.dtype)
        np.add.at(out.T, groups, shares.T)
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for display: input columns, encoded features, one-hot columns, imputation."""
        self._check_fitted()
        cats = [c for c in self.columns_ if c.kind == "category"]
        return {
            "input_columns": len(self.columns_),
            "features": len(self.feature_names),
            "one_hot_columns": [f"{c.name} ({len(c.categories)})" for c in cats],
            "impute": self.impute or "none (missing values are an error)",
        }
