"""anomalia.data: CSV/Parquet readers, the streaming batch reader, labels and the tabular encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from anomalia import InputError, InputTypeError, SchemaError
from anomalia.data import (
    TabularEncoder,
    as_labels,
    count_rows,
    iter_batches,
    prefetch,
    read_table,
    table_columns,
    table_format,
)

from tabular_files import mixed_frame, write


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_read_table_and_columns(tmp_path, suffix):
    df = mixed_frame(50)
    path = write(df, tmp_path / f"d{suffix}")
    table = read_table(path)
    assert table.num_rows == 50
    assert table_columns(path) == list(df.columns)
    assert read_table(path, ["a", "color"]).schema.names == ["a", "color"]
    assert count_rows(path) == (50 if suffix == ".parquet" else None)


def test_file_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="unknown file type"):
        table_format(tmp_path / "data.xlsx")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="could not be read as PARQUET"):
        read_table(junk)
    path = write(mixed_frame(20), tmp_path / "d.csv")
    with pytest.raises(SchemaError, match=r"no column\(s\) \['zzz'\]"):
        read_table(path, ["a", "zzz"])
    with pytest.raises(InputError, match="is a folder"):
        read_table(tmp_path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streaming_reader_covers_every_row_in_bounded_batches(tmp_path, suffix):
    n = 5000
    df = pd.DataFrame({"x": np.arange(n, dtype=np.float64), "y": np.arange(n) % 7})
    path = write(df, tmp_path / f"d{suffix}")
    batches = list(iter_batches(path, ["x"], batch_rows=1000))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    got = np.concatenate([b.column("x").to_numpy() for b in batches])
    np.testing.assert_array_equal(got, df["x"].to_numpy())
    if suffix == ".parquet":
        assert max(b.num_rows for b in batches) <= 1000


def test_streaming_csv_uses_fixed_column_types(tmp_path):
    """A column that looks like integers at first and holds decimals later parses as one type."""
    lines = ["v"] + [str(i) for i in range(3000)] + ["0.5"]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    got = np.concatenate(
        [b.column("v").to_numpy() for b in iter_batches(path, ["v"], batch_rows=64, column_types={"v": pa.float64()})]
    )
    assert got.size == 3001 and got[-1] == 0.5


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(iter(range(20)), depth=2)) == list(range(20))

    def failing():
        yield 1
        raise InputError("broken at item 2")

    with pytest.raises(InputError, match="broken"):
        list(prefetch(failing()))


def test_encoder_one_hot_booleans_and_round_trip():
    df = mixed_frame(100).drop(columns="label")
    enc = TabularEncoder().fit(df)
    assert enc.feature_names == ["a", "b", "color=blue", "color=green", "color=red", "ok", "c"]
    X = enc.transform(df)
    assert X.dtype == np.float32 and X.flags.c_contiguous and X.shape == (100, 7)
    np.testing.assert_array_equal(X[:, 2:5].sum(axis=1), 1.0)
    np.testing.assert_array_equal(X[:, 5], df["ok"].to_numpy().astype(np.float32))
    np.testing.assert_array_equal(enc.groups, [0, 1, 2, 2, 2, 3, 4])
    again = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(again.transform(pa.Table.from_pandas(df)), X)


def test_encoder_unseen_category_is_all_zero_and_extra_columns_are_ignored():
    enc = TabularEncoder().fit(pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": ["a", "b", "a"]}))
    X = enc.transform(pd.DataFrame({"k": ["zzz", "b"], "x": [1.0, 2.0], "extra": [0, 0]}))
    np.testing.assert_array_equal(X, [[1.0, 0.0, 0.0], [2.0, 0.0, 1.0]])


def test_encoder_too_many_categories_is_an_error():
    df = pd.DataFrame({"id": [f"user{i}" for i in range(60)], "x": np.arange(60.0)})
    with pytest.raises(InputError, match=r"'id' holds text with 60 distinct values.*--drop id.*--max-categories"):
        TabularEncoder(max_categories=50).fit(df)
    assert TabularEncoder(max_categories=60).fit(df).transform(df).shape == (60, 61)
    assert TabularEncoder(exclude=["id"]).fit(df).feature_names == ["x"]


def test_encoder_missing_values_error_or_median_imputation():
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0, 10.0], "k": ["a", None, "a", "b"]})
    with pytest.raises(InputError, match=r"'x' has 1 missing value.*--impute median"):
        TabularEncoder().fit(df)
    enc = TabularEncoder(impute="median").fit(df)
    X = enc.transform(df)
    assert X[1, 0] == 3.0  # median of 1, 3, 10
    np.testing.assert_array_equal(X[1, 1:], [1.0, 0.0])  # most frequent text value: 'a'
    state = TabularEncoder.from_dict(enc.to_dict())
    assert state.impute == "median"
    np.testing.assert_array_equal(state.transform(df), X)
    fitted_clean = TabularEncoder().fit(df.dropna())
    with pytest.raises(InputError, match=r"'x' has missing or infinite values in 1 row\(s\) \(first: \[11\]\)"):
        fitted_clean.transform(df, row_offset=10)


def test_encoder_schema_differences_are_schema_errors():
    enc = TabularEncoder().fit(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}))
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['y'\]"):
        enc.transform(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(SchemaError, match="'y' held numbers at fit but holds text"):
        enc.transform(pd.DataFrame({"x": [1.0], "y": ["text"]}))


def test_encoder_rejects_dates_with_a_hint():
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3), "x": [1.0, 2.0, 3.0]})
    with pytest.raises(InputTypeError, match=r"'t' holds dates or times.*--drop t.*--time-column t"):
        TabularEncoder().fit(df)


def test_labels_accept_numbers_booleans_and_words():
    np.testing.assert_array_equal(as_labels(pa.array([0, 1, 1])), [0, 1, 1])
    np.testing.assert_array_equal(as_labels(pa.array([True, False])), [1, 0])
    np.testing.assert_array_equal(as_labels(pa.array(["Anomaly", "normal", " yes "])), [1, 0, 1])
    with pytest.raises(InputError, match="must hold 0 \\(normal\\) and 1"):
        as_labels(pa.array([0, 2]), "y")
    with pytest.raises(InputError, match="holds 'maybe'"):
        as_labels(pa.array(["maybe"]), "y")
    with pytest.raises(InputError, match="1 missing value"):
        as_labels(pa.array([1, None]), "y")
