"""Reading a timestamp column: how it was parsed, said in words, and the same way again at scoring.

:func:`parse_timestamps` turns a column of a series into a :class:`pandas.DatetimeIndex` and returns the
:class:`TimeParsing` it used. Given nothing, it decides from the values and says so:

- numbers (integers or floats) are Unix times; their unit (``s``, ``ms``, ``us``, ``ns``) is inferred from
  their magnitude (about 1.7e9 for seconds today, 1.7e12 for milliseconds, ...);
- text written ``NN/NN/YYYY`` (or with ``.`` or ``-``) is read day-first when some value has a number above
  12 in the first place, month-first when one has it in the second place; when none has, it is ambiguous:
  read month-first, with a warning that says how to read it day-first;
- other text is read with the format inferred from its first value (``%Y-%m-%d %H:%M:%S``, ...).

A detector keeps the resolved :class:`TimeParsing` (``time_parsing_``), so new data is read as the data it
was fitted on. A value that cannot be read raises :class:`InputError` naming the column, the row, the value
and the argument (``date_format=``, ``dayfirst=``, ``time_unit=``) that fixes it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._core import InputError

log = logging.getLogger(__name__)

#: Units of numeric timestamps (Unix time).
TIME_UNITS = ("s", "ms", "us", "ns")
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: Upper bound of the median magnitude read as each unit (1e11 s is the year 5138; 1e8 s is 1973).
_UNIT_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
_DMY = r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{2,4})\b"


@dataclass(frozen=True)
class TimeParsing:
    """How a timestamp column is read: a strptime ``date_format``, ``dayfirst`` or a Unix ``time_unit``.

    ``how`` says it in words (the fit summary shows it); ``legacy`` marks models saved before the choice was
    kept (their columns are read as ``pandas.to_datetime`` reads them).
    """

    date_format: str | None = None
    dayfirst: bool | None = None
    time_unit: str | None = None
    how: str = ""
    legacy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TimeParsing:
        if d is None:
            return cls(how="as pandas.to_datetime reads it (a model saved before the parsing was kept)", legacy=True)
        return cls(**{k: d.get(k) for k in ("date_format", "dayfirst", "time_unit")}, how=d.get("how", ""))

    @property
    def fixed(self) -> bool:
        """True when nothing is left to infer (a format or a unit, or ``dayfirst`` given)."""
        return self.legacy or self.date_format is not None or self.time_unit is not None or self.dayfirst is not None


def parse_timestamps(
    values: Any,
    *,
    column: str,
    name: str = "X",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    time_unit: str | None = None,
    fitted: TimeParsing | None = None,
) -> tuple[pd.DatetimeIndex, TimeParsing]:
    """Read ``values`` (one column of ``name``) as timestamps; returns them and the parsing used.

    Parameters
    ----------
    values : array-like
        The column: datetimes, numbers (Unix time) or text.
    column, name : str
        The column's name and what holds it, for messages.
    date_format : str, optional
        A strptime format (``"%d.%m.%Y %H:%M"``); text must match it.
    dayfirst : bool, optional
        Read ``NN/NN/YYYY`` text day-first (True) or month-first (False); None = decide from the values.
    time_unit : {"s", "ms", "us", "ns"}, optional
        Unit of numeric timestamps; None = infer from their magnitude.
    fitted : TimeParsing, optional
        The parsing a detector was fitted with: new data is read the same way (the other arguments are
        ignored).
    """
    if fitted is not None:
        date_format, dayfirst, time_unit = fitted.date_format, fitted.dayfirst, fitted.time_unit
        if fitted.legacy:
            return _legacy(values, column, name), fitted
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise InputError(f"time_unit must be one of {list(TIME_UNITS)}; got {time_unit!r}")
    s = pd.Series(np.asarray(values) if not isinstance(values, pd.Series | pd.Index) else values, copy=False)
    s = s.reset_index(drop=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype) or s.dtype.kind == "M":
        return pd.DatetimeIndex(s), fitted or TimeParsing(how="already timestamps")
    if s.dtype.kind == "b":
        raise InputError(f"column {column!r} of {name} holds booleans, not timestamps; give the timestamp column")
    if s.dtype.kind in "iuf":
        return _numeric(s, column, name, time_unit, fitted)
    if time_unit is not None and fitted is None:
        raise InputError(
            f"time_unit={time_unit!r} is for numeric timestamps, but column {column!r} of {name} holds text "
            f"(first value {_first(s)!r}); leave time_unit out, or pass date_format='...' for its format"
        )
    return _text(s.astype(object), column, name, date_format, dayfirst, fitted)


def _first(s: pd.Series) -> Any:
    notnull = s[s.notna()]
    return None if notnull.empty else notnull.iloc[0]


def _legacy(values: Any, column: str, name: str) -> pd.DatetimeIndex:
    try:
        return pd.DatetimeIndex(pd.to_datetime(values))
    except (ValueError, TypeError) as exc:
        raise InputError(f"column {column!r} of {name} could not be read as timestamps: {exc}") from None


def _numeric(s: pd.Series, column: str, name: str, unit: str | None, fitted: TimeParsing | None) -> pd.DatetimeIndex:
    v = s.to_numpy(dtype=np.float64)
    finite = v[np.isfinite(v)]
    if unit is None:
        if finite.size == 0:
            raise InputError(f"column {column!r} of {name} holds no timestamps (every value is missing)")
        magnitude = float(np.median(np.abs(finite)))
        unit = next((u for limit, u in _UNIT_LIMITS if magnitude < limit), "ns")
        how = f"numbers read as Unix {_UNIT_WORDS[unit]} (inferred from their magnitude, about {magnitude:.3g})"
        if magnitude < 1e8:
            how += "; values this small may be step numbers rather than times"
    else:
        how = f"numbers read as Unix {_UNIT_WORDS[unit]}" + (" (as at fit)" if fitted is not None else "")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(s, unit=unit))
        index.as_unit("ns")  # the time axis is checked in nanoseconds: years 1677 to 2262
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        bad = _first_out_of_range(v, unit)
        if fitted is not None:
            raise InputError(
                f"column {column!r} of {name}: the value {bad:g} (row {int(np.flatnonzero(v == bad)[0])}) is out "
                f"of range as Unix {_UNIT_WORDS[unit]}, the unit the model was fitted with; give the times in that "
                "unit, or fit again with time_unit='...' for these numbers"
            ) from None
        raise InputError(
            f"column {column!r} of {name}: the value {bad:g} (row {int(np.flatnonzero(v == bad)[0])}) is out of "
            f"range as Unix {_UNIT_WORDS[unit]}; pass time_unit='s', 'ms', 'us' or 'ns' for the unit of these "
            "numbers"
        ) from None
    parsing = fitted or TimeParsing(time_unit=unit, how=how)
    return index, parsing


def _first_out_of_range(v: np.ndarray, unit: str) -> float:
    limit = pd.Timestamp.max.as_unit("ns").value / {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}[unit]
    big = np.flatnonzero(np.abs(v) >= limit)
    return float(v[big[0]]) if big.size else float(v[np.isfinite(v)][0])


def _text(
    s: pd.Series, column: str, name: str, fmt: str | None, dayfirst: bool | None, fitted: TimeParsing | None
) -> tuple[pd.DatetimeIndex, TimeParsing]:
    present = s.notna().to_numpy()
    if not present.any():
        raise InputError(f"column {column!r} of {name} holds no timestamps (every value is missing)")
    text = s.astype(str).str.strip()
    how = ""
    if fmt is None:
        dmy = text[present].str.extract(_DMY)
        matched = dmy[0].notna().to_numpy()
        if dayfirst is None and matched.mean() > 0.5:
            dayfirst, how = _day_or_month_first(text[present][matched], dmy[matched], column, name)
        first = str(text[present].iloc[0])
        fmt = pd.tseries.api.guess_datetime_format(first, dayfirst=bool(dayfirst))
        if fmt is not None and not how:
            how = f"text read with the format {fmt} (inferred from the first value, {first!r})"
        elif fmt is not None:
            how += f"; format {fmt}"
        elif not how:
            how = "text read by pandas (no single format fits the first value)"
    elif fitted is None:
        how = f"text read with the format {fmt} (date_format)"
    parsed = pd.to_datetime(s, format=fmt, dayfirst=bool(dayfirst), errors="coerce")
    failed = np.flatnonzero(present & parsed.isna().to_numpy())
    if failed.size:
        row = int(failed[0])
        value = s.iloc[row]
        if fitted is not None:
            raise InputError(
                f"column {column!r} of {name}: {value!r} (row {row}) is not a timestamp read as the model was "
                f"fitted ({fitted.how}); fix the value, or fit again with date_format='...' that reads it"
            )
        shown = f"the format {fmt}" if fmt is not None else "any format"
        raise InputError(
            f"column {column!r} of {name}: {value!r} (row {row}) could not be read as a timestamp with {shown} "
            f"({failed.size} value(s) fail); pass date_format='...' with the column's format (e.g. "
            "date_format='%d.%m.%Y %H:%M'), or dayfirst=True for day-first dates"
        )
    parsing = fitted or TimeParsing(date_format=fmt, dayfirst=dayfirst, how=how)
    index = pd.DatetimeIndex(parsed)
    try:
        index.as_unit("ns")
    except (ValueError, OverflowError):
        raise InputError(
            f"column {column!r} of {name} holds timestamps outside the years 1677 to 2262 ({index.min()} to "
            f"{index.max()}); fix them, or pass date_format='...' if they are read wrongly"
        ) from None
    return index, parsing


def _day_or_month_first(text: pd.Series, dmy: pd.DataFrame, column: str, name: str) -> tuple[bool, str]:
    """Whether ``NN/NN/YYYY`` values are day-first, from a number above 12 in either place; and why."""
    a, b = dmy[0].astype(int).to_numpy(), dmy[2].astype(int).to_numpy()
    day_first = np.flatnonzero(a > 12)
    month_first = np.flatnonzero(b > 12)
    if day_first.size and month_first.size:
        i, j = int(day_first[0]), int(month_first[0])
        raise InputError(
            f"column {column!r} of {name} mixes day-first and month-first dates ({text.iloc[i]!r} in row "
            f"{int(text.index[i])}, {text.iloc[j]!r} in row {int(text.index[j])}); fix the file, or pass "
            "date_format='...' with the one format it uses"
        )
    if day_first.size:
        i = int(day_first[0])
        return True, (
            f"text read day-first (dd/mm: {text.iloc[i]!r} in row {int(text.index[i])} has {a[i]} first, above 12)"
        )
    if month_first.size:
        j = int(month_first[0])
        return False, (
            f"text read month-first (mm/dd: {text.iloc[j]!r} in row {int(text.index[j])} has {b[j]} second, "
            "above 12)"
        )
    how = (
        f"text read month-first (mm/dd); ambiguous: no value (such as {text.iloc[0]!r}) has a number above 12 in "
        "either place, so pass dayfirst=True if these are day-first dates"
    )
    log.warning("column %r: %s (--dayfirst on the command line)", column, how)
    return False, how
