"""Exceptions, input validation, random generators, argument rules and run-finding; depends on numpy only."""

from .exceptions import (
    AnomaliaError,
    BundleError,
    InputError,
    InputTypeError,
    ParameterError,
    SchemaError,
    ThresholdError,
)
from .random import RandomState, check_random_state, child_seed
from .runs import find_runs
from .validation import (
    MIN_FIT_ROWS,
    Schema,
    as_float_array,
    check_finite,
    check_fit_input,
    check_is_fitted,
    check_labels,
    check_schema,
)

__all__ = [
    "MIN_FIT_ROWS",
    "AnomaliaError",
    "BundleError",
    "InputError",
    "InputTypeError",
    "NotFittedError",
    "ParameterError",
    "RandomState",
    "Schema",
    "SchemaError",
    "ThresholdError",
    "as_float_array",
    "check_finite",
    "check_fit_input",
    "check_is_fitted",
    "check_labels",
    "check_random_state",
    "check_schema",
    "child_seed",
    "find_runs",
]


def __getattr__(name: str) -> object:  # NotFittedError subclasses scikit-learn's: imported on first use
    if name == "NotFittedError":
        from . import exceptions

        value = exceptions.NotFittedError
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
