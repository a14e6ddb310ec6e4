"""The one validation module: every bad input gets our error with a message that says what to do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia._core import Schema, as_float_array, check_fit_input, check_labels, check_schema


def test_arrays_and_frames_become_float32_with_a_schema() -> None:
    arr, schema = as_float_array([[1, 2], [3, 4]])
    assert arr.dtype == np.float32 and arr.flags.c_contiguous and schema.n_features == 2 and schema.columns is None
    df = pd.DataFrame({"a": [1.0, 2.0], "b": np.array([3, 4], dtype=np.int16)})
    arr, schema = as_float_array(df)
    assert schema.columns == ("a", "b") and schema.dtypes == ("float64", "int16")
    assert Schema.from_dict(schema.to_dict()) == schema


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (None, an.InputTypeError, "is None"),
        ("file.csv", an.InputTypeError, "not a path"),
        (np.array(["a", "b"]).reshape(2, 1), an.InputTypeError, "must hold numbers"),
        (np.zeros(5), an.InputError, "reshape(-1, 1)"),
        (np.zeros((0, 3)), an.InputError, "empty"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), an.InputError, "NaN or infinite values in 1 row(s) (first: [0])"),
        (np.array([[1.0, 2.0], [np.inf, 3.0]]), an.InputError, "impute"),
        (pd.DataFrame({"a": [1.0, 2.0], "city": ["x", "y"]}), an.InputTypeError, "non-numeric columns: 'city'"),
    ],
)
def test_bad_input_is_named(bad: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        as_float_array(bad)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError | TypeError)


def test_sparse_input_says_how_to_convert() -> None:
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(an.InputTypeError, match=r"toarray\(\)"):
        as_float_array(sp.csr_matrix(np.eye(3)))


def test_fit_input_needs_rows_and_variation() -> None:
    with pytest.raises(an.InputError, match="1 sample"):
        check_fit_input(np.ones((1, 3)))
    with pytest.raises(an.InputError, match="constant"):
        check_fit_input(np.ones((10, 3)))
    X = np.c_[np.arange(10.0), np.ones(10)]  # one constant column among varying ones is fine
    assert check_fit_input(X)[0].shape == (10, 2)


def test_schema_mismatch_names_the_columns() -> None:
    fitted = Schema(3, ("a", "b", "c"))
    with pytest.raises(an.SchemaError, match="fitted on 3"):
        check_schema(Schema(2, ("a", "b")), fitted)
    with pytest.raises(an.SchemaError, match=r"missing \['c'\], unexpected \['d'\]"):
        check_schema(Schema(3, ("a", "b", "d")), fitted)
    with pytest.raises(an.SchemaError, match="other order"):
        check_schema(Schema(3, ("c", "b", "a")), fitted)
    check_schema(Schema(3, None), fitted)  # an array with the right width is accepted


def test_labels_must_be_zero_or_one() -> None:
    assert check_labels([True, False], 2).tolist() == [1, 0]
    with pytest.raises(an.InputError, match="only 0"):
        check_labels([0, 2], 2)
    with pytest.raises(an.InputError, match="one per row"):
        check_labels([0, 1, 1], 2)
