"""The exceptions anomalia raises.

Every error names the argument, what was expected and what came, and says how to fix it. Each class also
inherits the built-in it refines, so a plain ``except ValueError`` keeps working (and NotFittedError is
scikit-learn's, so model-selection tools recognise it; the one import of ``_core`` beyond numpy)::

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

from sklearn.exceptions import NotFittedError as _SkNotFittedError


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


class NotFittedError(AnomaliaError, _SkNotFittedError):
    """An inference method was called before ``fit``."""


class BundleError(AnomaliaError, ValueError):
    """A saved model folder that cannot be loaded (missing, corrupted, other format version)."""
