"""The exceptions anomalia raises.

Every error names the argument, what was expected and what came, and says how to fix it. Each class also
inherits the built-in it refines, so a plain ``except ValueError`` keeps working (and NotFittedError is
scikit-learn's, so model-selection tools recognise it; the one import of ``_core`` beyond numpy, made on
first use of the name so that ``import anomalia._core`` stays light for the command line)::

    Exception
     └── AnomaliaError
          ├── InputError (ValueError) ............ data that cannot be used as given
          │    ├── SchemaError ................... columns differ from those seen at fit
          │    └── ThresholdError ................ a threshold that cannot be fitted on what it got
          ├── InputTypeError (TypeError) ......... data or argument of the wrong type
          ├── ParameterError (ValueError) ........ a constructor argument out of its range
          ├── NotFittedError (scikit-learn's NotFittedError: ValueError, AttributeError)
          └── BundleError (ValueError) ........... a saved model that cannot be loaded
"""

from __future__ import annotations

from typing import Any


class AnomaliaError(Exception):
    """Base class of every error raised on purpose by anomalia."""


class InputError(AnomaliaError, ValueError):
    """Input data that cannot be used as given (empty, non-finite, wrong shape, ...)."""


class SchemaError(InputError):
    """Input whose columns differ from the ones the detector was fitted on."""


class ThresholdError(InputError):
    """A threshold that cannot be fitted on the scores (and labels) it was given."""


class InputTypeError(AnomaliaError, TypeError):
    """Input or argument of a type anomalia cannot use (strings where numbers are needed, ...)."""


class ParameterError(AnomaliaError, ValueError):
    """A constructor argument outside its allowed values; raised when ``fit`` checks the arguments."""


class BundleError(AnomaliaError, ValueError):
    """A saved model folder that cannot be loaded (missing, corrupted, other format version)."""


def _not_fitted_error() -> type:
    from sklearn.exceptions import NotFittedError as _SkNotFittedError

    class NotFittedError(AnomaliaError, _SkNotFittedError):
        """An inference method was called before ``fit``."""

    NotFittedError.__module__ = __name__
    return NotFittedError


def __getattr__(name: str) -> Any:  # PEP 562: NotFittedError needs scikit-learn, imported on first use
    if name == "NotFittedError":
        cls = globals()["NotFittedError"] = _not_fitted_error()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
