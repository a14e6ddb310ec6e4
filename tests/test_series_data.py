"""Series input: time axis checks, explicit repairs, zero-copy windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia.data.series import check_step, prepare_series
from anomalia.data.windows import per_step, sliding_windows


def frame(n: int = 20, freq: str = "5min") -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq=freq)
    return pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.sin(np.arange(n))}, index=idx)


def test_datetime_index_and_time_column_give_the_same_series() -> None:
    df = frame()
    s1 = prepare_series(df)
    s2 = prepare_series(df.reset_index(names="ts"), time_column="ts")
    np.testing.assert_array_equal(s1.values, s2.values)
    assert s1.schema.columns == ("a", "b") == s2.schema.columns
    assert s1.step == pd.Timedelta("5min") and s1.positions is None


def test_arrays_and_1d_input_are_series_without_time() -> None:
    s = prepare_series(np.arange(10.0))
    assert s.values.shape == (10, 1) and s.values.dtype == np.float32 and s.step is None


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.iloc[::-1], "increasing order"),
        (lambda df: pd.concat([df.iloc[:5], df.iloc[4:]]), "duplicate timestamp"),
        (lambda df: df.drop(df.index[7]), "irregular timestamps.*resample='5min'"),
        (lambda df: df.assign(a=np.where(np.arange(len(df)) == 3, np.nan, df["a"])), "fill='interpolate'"),
        (lambda df: df.assign(a=np.where(np.arange(len(df)) == 3, np.inf, df["a"])), "infinite"),
    ],
)
def test_bad_time_axes_and_values_get_clear_errors(mutate, match: str) -> None:
    with pytest.raises(an.InputError, match=match):
        prepare_series(mutate(frame()))


def test_missing_time_column_and_resample_without_time_are_errors() -> None:
    with pytest.raises(an.InputError, match="not a column"):
        prepare_series(frame(), time_column="when")
    with pytest.raises(an.InputError, match="needs timestamps"):
        prepare_series(np.zeros((5, 2)), resample="5min")


def test_resample_and_fill_repair_and_keep_rows_aligned() -> None:
    df = frame().drop(frame().index[7])  # a gap
    s = prepare_series(df, resample="5min", fill="interpolate")
    assert s.values.shape == (20, 2)
    assert s.values[7, 0] == pytest.approx(7.0)  # linear in time
    assert s.positions is not None and s.positions.size == 19
    assert s.to_rows(np.arange(20.0)).tolist() == [i for i in range(20) if i != 7]
    nan = frame().assign(a=lambda d: d["a"].where(np.arange(len(d)) != 3))
    assert prepare_series(nan, fill="ffill").values[3, 0] == 2.0


def test_duplicates_are_averaged_by_resample() -> None:
    df = pd.concat([frame().iloc[:5], frame().iloc[4:5].assign(a=100.0), frame().iloc[5:]])
    s = prepare_series(df, resample="5min")
    assert s.values.shape[0] == 20 and s.values[4, 0] == pytest.approx((4 + 100) / 2)


def test_other_step_than_at_fit_is_a_schema_error() -> None:
    with pytest.raises(an.SchemaError, match="resample='5min'"):
        check_step(prepare_series(frame(freq="1h")), pd.Timedelta("5min"))


def test_windows_are_zero_copy_views_ending_at_each_step() -> None:
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    w = sliding_windows(x, 4)
    assert w.shape == (9, 4, 2) and np.shares_memory(w, x)
    np.testing.assert_array_equal(w[3], x[3:7])
    assert sliding_windows(x, 4, stride=3).shape[0] == 3
    out = per_step(np.ones(9), 12, 4)
    assert out[:3].tolist() == [0.0, 0.0, 0.0] and out[3:].tolist() == [1.0] * 9
    with pytest.raises(an.InputError, match="fewer than one window"):
        sliding_windows(x, 20)


def test_replace_spikes_replaces_isolated_spikes_and_leaves_a_level_shift_alone():
    from anomalia.data.series import replace_spikes

    rng = np.random.default_rng(0)
    v = np.r_[np.zeros(300), np.full(300, 5.0)] + 0.1 * rng.normal(size=600)
    spikes = [50, 170, 420, 555]
    v[spikes] += [3.0, -3.0, 4.0, -4.0]
    cleaned, n = replace_spikes(prepare_series(pd.DataFrame({"v": v})), half=12)
    out = cleaned.values[:, 0]
    assert n == len(spikes)
    np.testing.assert_array_less(np.abs(out[spikes] - np.r_[0, 0, 5, 5]), 0.5)
    untouched = np.setdiff1d(np.arange(600), spikes)
    np.testing.assert_array_equal(out[untouched], v[untouched].astype(np.float32))  # the shift at 300 stays
