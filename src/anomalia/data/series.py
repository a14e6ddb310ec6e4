"""Time series in: a DataFrame with a DatetimeIndex or a named timestamp column, or an array (time, channels).

:func:`prepare_series` checks the time axis and the values and either raises an error that says what was
found and which option fixes it, or repairs the series with an option the user asked for (and that the
detector saves with the model):

- timestamps out of order, missing (NaT) -> error;
- duplicate timestamps -> error, or averaged with ``resample="<step>"``;
- irregular spacing and gaps -> error, or put on a regular grid with ``resample="<step>"`` (mean per bin);
- NaN values (and bins left empty by resampling) -> error, or filled with ``fill="interpolate"`` (linear
  in time) or ``fill="ffill"`` (last value carried forward);
- inf values -> always an error.

Scores stay aligned with the input rows: when resampling merged rows, :attr:`Series.positions` maps every
input row to its grid step, and each row gets the score of its step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .._core import InputError, InputTypeError, Schema, SchemaError
from .._core.validation import _frame_to_array, _is_frame
from .timestamps import TimeParsing, parse_timestamps

FILL_OPTIONS = ("error", "interpolate", "ffill")


@dataclass(frozen=True)
class Series:
    """A checked series: float32 values (n_steps, n_channels), its schema and time axis."""

    values: np.ndarray
    schema: Schema
    index: pd.DatetimeIndex | None = None
    step: pd.Timedelta | None = None
    #: Grid step of each input row when resampling merged rows; None when rows and steps are the same.
    positions: np.ndarray | None = None
    #: How the time column was read (None without a time column).
    parsing: TimeParsing | None = None

    def to_rows(self, per_step: np.ndarray) -> np.ndarray:
        """Values per grid step -> values per input row (identity unless the series was resampled)."""
        return per_step if self.positions is None else per_step[self.positions]


def _ts(t: Any) -> str:
    return str(pd.Timestamp(t))


def _time_axis(
    X: Any, time_column: str | None, name: str, parse: dict[str, Any]
) -> tuple[Any, pd.DatetimeIndex | None, TimeParsing | None]:
    """Split a frame into (frame of value columns, DatetimeIndex or None, how the time column was read)."""
    if isinstance(X, pd.Series):
        X = X.to_frame(name=str(X.name) if X.name is not None else "value")
    if not _is_frame(X):
        if time_column is not None:
            raise InputTypeError(
                f"time_column={time_column!r} was given but {name} is a {type(X).__name__}, not a DataFrame; "
                "pass a DataFrame holding that column, or time_column=None for an array (time, channels)"
            )
        return X, None, None
    if time_column is not None:
        if time_column not in X.columns:
            raise InputError(
                f"time_column={time_column!r} is not a column of {name}; its columns are {list(X.columns)[:10]}"
            )
        index, parsing = parse_timestamps(X[time_column], column=time_column, name=name, **parse)
        return X.drop(columns=[time_column]), index, parsing
    if isinstance(X.index, pd.DatetimeIndex):
        return X, X.index, None
    return X, None, None


def _values(X: Any, name: str) -> tuple[np.ndarray, tuple[str, ...] | None, tuple[str, ...]]:
    if X is None:
        raise InputTypeError(
            f"{name} is None; pass a series: a DataFrame with a DatetimeIndex or an array (time, channels)"
        )
    if isinstance(X, str | bytes):
        raise InputTypeError(f"{name} is a string ({X[:40]!r}); pass the data, not a path (read it first)")
    if _is_frame(X):
        arr, columns, dtypes = _frame_to_array(X, name)
        return arr, columns, dtypes
    try:
        raw = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"{name} could not be read as an array: {exc}") from None
    if raw.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must hold numbers; got dtype {raw.dtype}. Encode or drop non-numeric channels")
    arr = raw.astype(np.float32).reshape(-1, 1) if raw.ndim == 1 else raw.astype(np.float32)
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be a series of shape (n_steps, n_channels); got {arr.ndim}-D of shape {raw.shape}"
        )
    return arr, None, (str(raw.dtype),) * arr.shape[1]


def _check_time(index: pd.DatetimeIndex, name: str, resample: str | None) -> pd.Timedelta | None:
    """Order, NaT, duplicates and spacing; returns the regular step (None for fewer than 2 rows)."""
    index = index.as_unit("ns")
    if index.hasnans:
        rows = np.flatnonzero(index.isna())[:5].tolist()
        raise InputError(f"{name} has missing timestamps (NaT) in rows {rows}; drop those rows or fix the times")
    if not index.is_monotonic_increasing:
        bad = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
        raise InputError(
            f"{name} timestamps are not in increasing order (row {bad}: {_ts(index[bad])} comes after "
            f"{_ts(index[bad - 1])}); sort it first (X.sort_index() or X.sort_values(time_column))"
        )
    if resample is not None:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(resample))
    dup = index.duplicated()
    if dup.any():
        raise InputError(
            f"{name} has {int(dup.sum())} duplicate timestamp(s) (first: {_ts(index[dup][0])}); drop them "
            "(X[~X.index.duplicated()]) or pass resample='<step>' (e.g. '5min') to average rows that share a step"
        )
    if len(index) < 2:
        return None
    diffs = np.diff(index.asi8)
    step = int(np.median(diffs))
    irregular = diffs != step
    if irregular.any():
        where = np.flatnonzero(irregular)
        big = int(where[np.argmax(diffs[where])])
        raise InputError(
            f"{name} has irregular timestamps: {where.size} of {diffs.size} steps differ from the usual "
            f"{pd.Timedelta(step)} (largest: {pd.Timedelta(int(diffs[big]))} after {_ts(index[big])}). Pass "
            f"resample='{_offset_text(pd.Timedelta(step))}' to put the series on a regular grid (empty steps are "
            "then filled as `fill` says), or fix the timestamps"
        )
    return pd.Timedelta(step)


def _offset_text(step: pd.Timedelta) -> str:
    return pd.tseries.frequencies.to_offset(step).freqstr


def _fill(frame: pd.DataFrame, fill: str, name: str, columns: tuple[str, ...] | None, timed: bool) -> pd.DataFrame:
    nan = frame.isna().to_numpy()
    if not nan.any():
        return frame
    rows = np.flatnonzero(nan.any(axis=1))
    if fill == "error":
        cols = np.flatnonzero(nan.any(axis=0))
        names = [columns[c] if columns else str(c) for c in cols[:5]]
        raise InputError(
            f"{name} has missing values (NaN) in {rows.size} step(s) (first: {rows[:5].tolist()}) of channel(s) "
            f"{names}. Pass fill='interpolate' (linear in time) or fill='ffill' (carry the last value forward), "
            "or drop/impute them first"
        )
    empty = np.flatnonzero(nan.all(axis=0))
    if empty.size:
        names = [columns[c] if columns else str(c) for c in empty[:5]]
        raise InputError(f"{name} channel(s) {names} hold no values at all; drop them")
    if fill == "interpolate":
        out = frame.interpolate(method="time" if timed else "linear", limit_direction="both")
    else:
        out = frame.ffill().bfill()
    return out


def prepare_series(
    X: Any,
    *,
    time_column: str | None = None,
    resample: str | None = None,
    fill: str = "error",
    name: str = "X",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    time_unit: str | None = None,
    parsing: TimeParsing | None = None,
) -> Series:
    """Check (and on request repair) a series; see the module docstring for what is checked.

    Parameters
    ----------
    X : DataFrame, Series or array-like of shape (n_steps,) or (n_steps, n_channels)
        The series. A DataFrame's DatetimeIndex, or its ``time_column``, is the time axis.
    time_column : str, optional
        Name of the timestamp column (dropped from the channels).
    resample : str, optional
        A pandas step (``"5min"``, ``"1h"``): average the rows of each step on a regular grid. Needs
        timestamps.
    fill : {"error", "interpolate", "ffill"}
        What to do with missing values.
    date_format, dayfirst, time_unit
        How to read ``time_column`` (see :func:`anomalia.data.timestamps.parse_timestamps`); None = decide
        from the values and say so in :attr:`Series.parsing`.
    parsing : TimeParsing, optional
        The parsing a fitted detector keeps: read the time column exactly so (the three above are ignored).
    """
    if fill not in FILL_OPTIONS:
        raise InputError(f"fill must be one of {list(FILL_OPTIONS)}; got {fill!r}")
    parse = {"date_format": date_format, "dayfirst": dayfirst, "time_unit": time_unit, "fitted": parsing}
    frame, index, how = _time_axis(X, time_column, name, parse)
    arr, columns, dtypes = _values(frame, name)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); a series needs at least one step and one channel")
    if np.isinf(arr).any():
        rows = np.flatnonzero(np.isinf(arr).any(axis=1))[:5].tolist()
        raise InputError(f"{name} has infinite values in rows {rows}; replace them (e.g. by NaN with fill=...)")
    step = None
    positions = None
    if index is not None:
        step = _check_time(index, name, resample)
    elif resample is not None:
        raise InputError(
            f"resample={resample!r} needs timestamps, but {name} has none; pass a DataFrame with a DatetimeIndex "
            "or time_column=..."
        )
    if resample is not None and index is not None:
        df = pd.DataFrame(arr, index=index)
        grid = df.resample(resample).mean()
        grid_ns, rows_ns = grid.index.as_unit("ns").asi8, index.as_unit("ns").asi8
        positions = np.searchsorted(grid_ns, rows_ns, side="right") - 1
        if positions.size == grid.shape[0] and np.array_equal(positions, np.arange(positions.size)):
            positions = None
        index = pd.DatetimeIndex(grid.index)
        frame_v = grid
    else:
        frame_v = pd.DataFrame(arr, index=index)
    frame_v = _fill(frame_v, fill, name, columns, timed=index is not None)
    values = np.ascontiguousarray(frame_v.to_numpy(dtype=np.float32))
    return Series(values, Schema(values.shape[1], columns, tuple(dtypes)), index, step, positions, how)


def check_step(series: Series, fitted_step: pd.Timedelta | None, name: str = "X") -> None:
    """Raise :class:`SchemaError` when a timed series has another step than the one seen at fit."""
    if fitted_step is None or series.step is None or series.step == fitted_step:
        return
    raise SchemaError(
        f"{name} has a time step of {series.step} but the detector was fitted on a series with a step of "
        f"{fitted_step}; resample it to the same step (resample='{_offset_text(fitted_step)}')"
    )


def replace_spikes(series: Series, half: int, mads: float = 5.0) -> tuple[Series, int]:
    """The series with its isolated spikes replaced (a Hampel filter), and how many values were replaced.

    A value is a spike when it lies more than ``mads`` robust standard deviations (1.4826 MAD) from the
    median of the ``2 * half + 1`` steps centred on it; it is replaced by that median. The window's robust
    standard deviation is floored at the channel's step-to-step noise (the robust spread of its first
    differences over the square root of 2), so that a flat or quantised stretch does not make every small
    step a spike. The first and last ``half`` steps, which have no centred window, are left as they are. A
    level shift inside the series is not touched: on either side of it most of a window shares the value's
    level.
    """
    x = series.values.astype(np.float64)
    half = int(half)
    if x.shape[0] < 2 * half + 2:
        return series, 0
    win = np.lib.stride_tricks.sliding_window_view(x, 2 * half + 1, axis=0)  # (n - 2 half, channels, width)
    med = np.median(win, axis=2)
    mad = 1.4826 * np.median(np.abs(win - med[..., None]), axis=2)
    step = np.diff(x, axis=0)  # the noise between neighbouring steps, whatever the level or the shape
    noise = 1.4826 * np.median(np.abs(step - np.median(step, axis=0)), axis=0) / np.sqrt(2.0)
    noise = np.where(noise > 0, noise, np.abs(step).mean(axis=0) / np.sqrt(2.0))
    mid = x[half : x.shape[0] - half]
    spikes = np.abs(mid - med) > mads * np.maximum(mad, np.maximum(noise, 1e-12))
    if not spikes.any():
        return series, 0
    values = series.values.copy()
    inner = values[half : x.shape[0] - half]
    inner[spikes] = med[spikes].astype(values.dtype)
    return replace(series, values=values), int(spikes.sum())
