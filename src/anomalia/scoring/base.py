"""The :class:`Threshold` base class: parameters, fitting, copying and the JSON form every threshold shares.

A threshold is an estimator in scikit-learn's sense: ``__init__`` stores its keyword arguments under their
own names (:meth:`Threshold.get_params`), ``fit`` sets ``threshold_`` and ``info_``. :meth:`Threshold.to_dict`
keeps every parameter and the fitted state, so a saved threshold comes back exactly.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import Any, ClassVar

import numpy as np

from .._core import InputError, NotFittedError, ParameterError, ThresholdError, check_labels


@functools.cache
def _signature(cls: type) -> tuple[tuple[str, Any], ...]:
    """``(name, default)`` of each constructor argument of ``cls`` (``inspect.Parameter.empty`` if none)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return tuple(
        (p.name, p.default)
        for p in params
        if p.name != "self" and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )


def check_unit(owner: str, name: str, value: Any) -> None:
    """Raise :class:`ParameterError` unless ``value`` is a number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
        raise ParameterError(f"{owner}({name}=...) must be a number in (0, 1); got {value!r}")


def _describe(d: Any) -> str:
    return f"keys {sorted(map(str, d))}" if isinstance(d, dict) else type(d).__name__


class Threshold:
    """Base class of the decision rules: fitted on scores, it flags ``score > threshold_``.

    Subclasses set ``name`` (their key in :data:`~anomalia.scoring.THRESHOLDS`), store each constructor
    argument under its own name and implement ``_fit``. ``arg_name`` names the argument that a spec string's
    value sets (``"pot:1e-3"`` sets ``risk``); other arguments are reachable from Python and kept by
    :meth:`clone`, :meth:`to_dict` and :func:`copy.deepcopy`.
    """

    name: ClassVar[str]
    needs_labels: ClassVar[bool] = False
    streaming: ClassVar[bool] = False
    arg_name: ClassVar[str | None] = None
    #: Whether a spec may leave the value out (``"pot"``: the default risk).
    value_optional: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            THRESHOLDS[cls.name] = cls

    def __init__(self) -> None:
        """Subclasses take their parameters as arguments and store each under its own name, nothing else."""

    # -- parameters ---------------------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments by name (``deep`` is scikit-learn's; a threshold holds no estimators)."""
        return {name: getattr(self, name) for name, _ in _signature(type(self))}

    def clone(self) -> Threshold:
        """A fresh, unfitted threshold with the same parameters."""
        return type(self)(**self.get_params())

    @property
    def arg(self) -> Any:
        """The value of the spec's argument (``None`` for thresholds without one)."""
        return None if self.arg_name is None else getattr(self, self.arg_name)

    @property
    def spec(self) -> str:
        """``"name[:value]"``, as the command line writes it (other parameters are not shown)."""
        return self.name if self.arg_name is None else f"{self.name}:{self.arg:g}"

    def __repr__(self) -> str:
        params = self.get_params()
        shown = [f"{k}={params[k]!r}" for k, default in _signature(type(self)) if _differs(params[k], default)]
        return f"{type(self).__name__}({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params() == self.get_params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.get_params().items())))

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, scores: Any, y: Any = None) -> Threshold:
        """Fit on ``scores`` (held-out normal scores, or a labelled validation set's scores with ``y``)."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        if s.size == 0:
            raise InputError(f"{self.spec}: scores is empty; fit the threshold on at least one score")
        if not np.isfinite(s).all():
            raise InputError(f"{self.spec}: scores contain NaN or inf; score finite data")
        labels = None
        if self.needs_labels:
            labels = check_labels(y, s.size)
            n_anom = int(labels.sum())
            if n_anom == 0:
                raise ThresholdError(
                    f"threshold '{self.spec}' needs labelled anomalies, but the validation set of {s.size} rows has "
                    "none (all labels are 0). Add labelled anomalies, or use 'false-alarm:ALPHA', which needs "
                    "only normal data"
                )
            if n_anom == s.size:
                raise ThresholdError(f"threshold '{self.spec}' needs normal rows too; all {s.size} labels are 1")
        self.info_: dict[str, float] = {}
        self.threshold_ = float(self._fit(s, labels))
        return self

    def _fit(self, s: np.ndarray, y: np.ndarray | None) -> float:
        raise NotImplementedError

    def predict(self, scores: Any) -> np.ndarray:
        """Boolean flags: ``scores > threshold_``."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"threshold '{self.spec}' is not fitted; call fit(scores) first")
        return np.asarray(scores, dtype=np.float64) > self.threshold_

    # -- JSON form ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"name", "params", "spec"}`` and, when fitted, ``"threshold"`` and ``"info"``.

        ``params`` holds every constructor argument; :meth:`from_dict` rebuilds the threshold exactly.
        """
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.get_params().items()}
        d: dict[str, Any] = {"name": self.name, "params": params, "spec": self.spec}
        if hasattr(self, "threshold_"):
            d["threshold"] = float(self.threshold_)
            d["info"] = {k: float(v) for k, v in self.info_.items()}
            d.update(self._state_to_dict())
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Threshold:
        """Rebuild a threshold from :meth:`to_dict` (or from anomalia 0.1's ``{"spec", "threshold", "info"}``).

        Raises :class:`~anomalia.ParameterError` for an unknown name or parameters and
        :class:`~anomalia.InputError` for a damaged dict.
        """
        if not isinstance(d, dict):
            raise InputError(f"a saved threshold must be a dict; got {_describe(d)}")
        if "name" in d:
            name, params = d["name"], d.get("params", {})
            if not isinstance(name, str) or name not in THRESHOLDS:
                raise ParameterError(f"unknown threshold {name!r} in a saved threshold; known: {sorted(THRESHOLDS)}")
            kind = THRESHOLDS[name]
            if not isinstance(params, dict):
                raise InputError(f"the 'params' of saved threshold {name!r} must be a dict; got {_describe(params)}")
            allowed = [k for k, _ in _signature(kind)]
            unknown = sorted(set(map(str, params)) - set(allowed))
            missing = [k for k, default in _signature(kind) if default is inspect.Parameter.empty and k not in params]
            if unknown or missing:
                raise ParameterError(
                    f"saved threshold {name!r} has parameters {sorted(map(str, params))}, unknown {unknown}, "
                    f"missing {missing}; {kind.__name__} takes {allowed}"
                )
            t = kind(**params)
        elif "spec" in d:  # anomalia 0.1
            if not isinstance(d["spec"], str):
                raise InputError(f"the 'spec' of a saved threshold must be a string; got {d['spec']!r}")
            t = parse_threshold(d["spec"])
        else:
            raise InputError(f"a saved threshold needs 'name' and 'params' (or an old 'spec'); got {_describe(d)}")
        if not isinstance(t, cls):
            raise ParameterError(f"{cls.__name__}.from_dict got a saved {type(t).__name__} ({t.spec!r})")
        if "threshold" in d:
            value, info = d["threshold"], d.get("info", {})
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                raise InputError(f"saved threshold {t.spec!r} has threshold {value!r}; expected a number")
            if not isinstance(info, dict) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in info.values()
            ):
                raise InputError(f"saved threshold {t.spec!r} has info {info!r}; expected a dict of numbers")
            t.threshold_ = float(value)
            t.info_ = {str(k): float(v) for k, v in info.items()}
            t._state_from_dict(d)
        return t

    def _state_to_dict(self) -> dict[str, Any]:
        """Fitted state beyond ``threshold_`` and ``info_`` (streaming thresholds), JSON-able."""
        return {}

    def _state_from_dict(self, d: dict[str, Any]) -> None:
        """Restore what :meth:`_state_to_dict` wrote."""


def _differs(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty:
        return True
    try:
        return bool(value != default)
    except (TypeError, ValueError):
        return True


#: Every threshold class by its spec name; a subclass that sets ``name`` registers itself.
THRESHOLDS: dict[str, type[Threshold]] = {}

#: Spec names that are a registered threshold with other defaults: ``"dspot:RISK"`` is ``SPOT(RISK, depth=10)``.
SPEC_ALIASES: dict[str, tuple[str, dict[str, object]]] = {"dspot": ("spot", {"depth": 10})}


def parse_threshold(spec: str | Threshold) -> Threshold:
    """A fresh, unfitted threshold from ``"name[:value]"`` (e.g. ``"false-alarm:0.05"``), or ``spec.clone()``
    for a :class:`Threshold` (all its parameters kept)."""
    if isinstance(spec, Threshold):
        return spec.clone()
    if not isinstance(spec, str):
        raise ParameterError(f"threshold must be a spec string like 'false-alarm:0.01' or a Threshold; got {spec!r}")
    name, _, value = spec.strip().partition(":")
    base, extra = SPEC_ALIASES.get(name, (name, {}))
    if base not in THRESHOLDS:
        known = sorted([*THRESHOLDS, *SPEC_ALIASES])
        raise ParameterError(f"unknown threshold {name!r} in {spec!r}; choose one of {known}")
    cls = THRESHOLDS[base]
    if cls.arg_name is None:
        if value:
            raise ParameterError(f"threshold {name!r} takes no value; got {spec!r}")
        return cls(**extra)
    if not value:
        if cls.value_optional:
            return cls(**extra)
        raise ParameterError(f"threshold {name!r} needs a value, e.g. '{name}:0.9'; got {spec!r}")
    try:
        num = float(value)
    except ValueError:
        raise ParameterError(f"threshold value in {spec!r} must be a number; got {value!r}") from None
    return cls(**{cls.arg_name: num, **extra})
