"""The estimator contract every detector follows.

``fit`` validates the normal data, holds a part out, trains on the rest (the subclass's ``_fit``), scores
the held-out part to calibrate conformal p-values, and fits the threshold on those scores. Subclasses
implement ``_fit``, ``_score`` and, for ``explain``, ``_feature_scores``; for saving they describe their
learned state with ``_get_state`` / ``_set_state``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin

from .._core import (
    InputError,
    NotFittedError,
    RandomState,
    Schema,
    as_float_array,
    check_finite,
    check_fit_input,
    check_is_fitted,
    check_random_state,
    check_schema,
    child_seed,
)
from .._core.params import Rule, check_params, instance_of, interval, options
from ..scoring import Threshold, conformal_p_values, parse_threshold

log = logging.getLogger(__name__)

#: Held-out normal rows kept for calibration at most; the rest of the data trains the model.
MAX_CALIBRATION_ROWS = 5000
#: Earlier normal rows kept to mix into ``partial_fit`` so the old normal is not forgotten.
REPLAY_ROWS = 2000

COMMON_RULES: dict[str, list[Rule]] = {
    "contamination": [interval(0.0, 0.5, closed="right"), options(None)],
    "threshold": [instance_of(str, Threshold, text="a threshold spec like 'false-alarm:0.01'"), options(None)],
    "calibration_fraction": [interval(0.0, 0.9, closed="neither")],
}


class BaseDetector(OutlierMixin, BaseEstimator):
    """Base of all detectors: scikit-learn conventions plus ``anomaly_score``, ``p_value``, ``is_anomaly``.

    Scales: ``anomaly_score`` is higher for anomalies (the scale of thresholds, metrics and reports);
    ``score_samples`` is its negation (scikit-learn: higher is more normal); ``predict`` gives -1 for
    anomalies and 1 for normal rows; ``decision_function`` is negative for anomalies.
    """

    name: ClassVar[str] = "base"
    #: Number of array dimensions of one ``X`` (2 for tables; images and series override).
    input_ndim: ClassVar[int] = 2
    #: Argument rules checked at ``fit`` (name -> allowed forms).
    parameter_rules: ClassVar[dict[str, list[Rule]]] = {}
    #: Cheap settings for the contract tests.
    test_params: ClassVar[dict[str, Any]] = {}
    #: True when a NaN or inf in the input always makes the score non-finite (the input is part of the score,
    #: as in a reconstruction error): scoring then checks the scores instead of making an extra pass over X.
    nonfinite_propagates: ClassVar[bool] = False

    random_state: RandomState
    contamination: float | None
    threshold: str | Threshold | None
    calibration_fraction: float

    @classmethod
    def _contract_data(cls, rng: np.random.Generator, n: int) -> np.ndarray:
        """Normal-looking data of ``n`` rows (time steps, images) for the shared contract tests."""
        return rng.normal(size=(n, 5)).astype(np.float32)

    # ------------------------------------------------------------------ hooks for subclasses
    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        raise NotImplementedError

    def _update(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        """Continue learning on ``X`` (new normal rows mixed with replayed old ones); default: refit."""
        self._fit(X, rng, callback)

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"{type(self).__name__} has no per-feature decomposition of its score; use "
            "anomalia.explain.occlusion(detector, X), which works for any detector"
        )

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as (JSON-able dict, named arrays) for saving."""
        raise NotImplementedError

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        check_params(type(self).__name__, self.get_params(deep=False), {**COMMON_RULES, **self.parameter_rules})

    def _validate(self, X: Any, *, fitting: bool, finite: bool = True) -> tuple[np.ndarray, Schema]:
        """Checked float32 input and its schema; ``finite=False`` leaves the NaN/inf check to the caller."""
        if fitting:
            return check_fit_input(X, ndim=self.input_ndim)
        arr, schema = as_float_array(X, ndim=self.input_ndim, check_finite_values=finite)
        check_schema(schema, self.schema_)
        return arr, schema

    def _threshold_spec(self) -> Threshold:
        if self.threshold is not None:
            return parse_threshold(self.threshold)
        if self.contamination is not None:
            return parse_threshold(f"contamination:{self.contamination}")
        return parse_threshold("false-alarm:0.01")

    def _split(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indices of training and calibration rows."""
        n_cal = min(max(1, round(self.calibration_fraction * n)), MAX_CALIBRATION_ROWS, n - 2)
        perm = rng.permutation(n)
        return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])

    def fit(self, X: Any, y: Any = None, *, callback: Any = None) -> BaseDetector:
        """Learn normal behaviour from ``X`` (normal rows; ``y`` is ignored).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_rows, n_features)
            Normal data. With ``contamination`` set it may hold that share of anomalies.
        y : ignored
            Present for scikit-learn compatibility; use :meth:`fit_threshold` for labelled thresholds.
        callback : callable, optional
            ``callback(epoch, train_loss, val_loss)`` after each epoch of deep detectors.
        """
        self._check_params()
        arr, schema = self._validate(X, fitting=True)
        rng = check_random_state(self.random_state)
        self.seed_ = child_seed(rng)
        self.schema_ = schema
        self.n_features_in_ = schema.n_features
        if schema.columns is not None:
            self.feature_names_in_ = np.asarray(schema.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        train_idx, cal_idx = self._split(arr.shape[0], rng)
        self.n_train_rows_ = int(train_idx.size)
        self.n_updates_ = 0
        self._fit(arr[train_idx], rng, callback)
        self.replay_ = _subsample(arr[train_idx], REPLAY_ROWS, rng)
        self.calibration_rows_ = _subsample(arr[cal_idx], REPLAY_ROWS, rng)
        self._calibrate(self._score(arr[cal_idx]))
        return self

    def _calibrate(self, calibration_scores: np.ndarray) -> None:
        self.calibration_scores_ = np.sort(calibration_scores.astype(np.float64))
        spec = self._threshold_spec()
        self.threshold_ = None if spec.needs_labels else spec.fit(self.calibration_scores_)

    def partial_fit(self, X: Any, y: Any = None, *, callback: Any = None) -> BaseDetector:
        """Keep learning from new normal rows ``X`` without forgetting the old normal.

        Training continues from the current state on ``X`` mixed with an equal number of replayed earlier
        normal rows; calibration is refreshed on old and new held-out rows. Unfitted: same as ``fit``.
        """
        if not hasattr(self, "schema_"):
            return self.fit(X, callback=callback)
        arr, _ = self._validate(X, fitting=False)
        if arr.shape[0] < 2:
            n = arr.shape[0]
            raise InputError(f"partial_fit needs at least 2 new rows (one is held out for calibration); got {n}")
        self.n_updates_ += 1
        rng = np.random.default_rng([self.seed_, self.n_updates_])
        train_idx, cal_idx = self._split(arr.shape[0], rng) if arr.shape[0] > 2 else (np.array([0]), np.array([1]))
        new_train = arr[train_idx]
        replay = self.replay_[rng.permutation(self.replay_.shape[0])[: new_train.shape[0]]]
        self._update(np.concatenate([new_train, replay]), rng, callback)
        self.n_train_rows_ += int(train_idx.size)
        self.replay_ = _reservoir(self.replay_, new_train, self.n_train_rows_, rng)
        self.calibration_rows_ = _subsample(np.concatenate([self.calibration_rows_, arr[cal_idx]]), REPLAY_ROWS, rng)
        self._calibrate(self._score(self.calibration_rows_))
        return self

    # ------------------------------------------------------------------ scoring
    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score per row, shape (n,), float64; higher = more anomalous."""
        check_is_fitted(self)
        arr, schema = self._validate(X, fitting=False, finite=not self.nonfinite_propagates)
        scores = self._score(arr)
        if self.nonfinite_propagates and not np.isfinite(scores).all():
            check_finite(arr, columns=schema.columns)  # names the bad rows and columns
        return scores

    def p_value(self, X: Any) -> np.ndarray:
        """Conformal p-value per row in (0, 1]: small when few held-out normal rows scored as high."""
        return conformal_p_values(self.calibration_scores_, self.anomaly_score(X))

    def _fitted_threshold(self) -> Threshold:
        check_is_fitted(self)
        if self.threshold_ is None:
            spec = self._threshold_spec().spec
            raise NotFittedError(
                f"threshold '{spec}' needs labels: call fit_threshold(X_val, y_val) with a labelled validation set"
            )
        return self.threshold_

    def is_anomaly(self, X: Any) -> np.ndarray:
        """Boolean decision per row using the fitted threshold (``threshold_``)."""
        return self._fitted_threshold().predict(self.anomaly_score(X))

    def fit_threshold(self, X: Any = None, y: Any = None, threshold: str | Threshold | None = None) -> BaseDetector:
        """(Re)fit the decision threshold.

        With ``X`` (and ``y`` for labelled thresholds such as ``"best-f1"`` or ``"precision:0.9"``) the
        threshold is fitted on the scores of ``X``; without, on the held-out calibration scores. The new
        ``threshold`` spec, when given, replaces the constructor's.
        """
        check_is_fitted(self)
        if threshold is not None:
            self.set_params(threshold=threshold)
        spec = self._threshold_spec()
        scores = self.calibration_scores_ if X is None else self.anomaly_score(X)
        if spec.needs_labels and y is None:
            raise InputError(f"threshold '{spec.spec}' needs labels: pass y (1 = anomaly, 0 = normal) with X")
        self.threshold_ = spec.fit(scores, y)
        return self

    # scikit-learn's names, with scikit-learn's meaning
    @property
    def offset_(self) -> float:
        return -self._fitted_threshold().threshold_

    def score_samples(self, X: Any) -> np.ndarray:
        """Negated anomaly score (scikit-learn: higher = more normal)."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``threshold - anomaly_score``: negative for anomalies (scikit-learn's convention)."""
        return self._fitted_threshold().threshold_ - self.anomaly_score(X)

    def predict(self, X: Any) -> np.ndarray:
        """-1 for anomalies, 1 for normal rows (scikit-learn's convention)."""
        return np.where(self.is_anomaly(X), -1, 1)

    # ------------------------------------------------------------------ explanations and saving
    def explain(self, X: Any) -> np.ndarray:
        """Each feature's share of each row's score, shape (n, n_features); rows sum to 1."""
        check_is_fitted(self)
        arr, _ = self._validate(X, fitting=False)
        return normalise_shares(self._feature_scores(arr))

    def save(self, path: str | Path) -> Path:
        """Save to a folder (JSON manifest + safetensors); see :func:`anomalia.load`."""
        from ..bundle import save  # the bundle layer sits above detectors

        return save(self, path)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def normalise_shares(parts: np.ndarray) -> np.ndarray:
    """Rows of non-negative parts scaled to sum to 1 (uniform where a row is all zero)."""
    parts = np.clip(np.asarray(parts, dtype=np.float64).reshape(parts.shape[0], -1), 0.0, None)
    total = parts.sum(axis=1, keepdims=True)
    uniform = np.full_like(parts, 1.0 / parts.shape[1])
    return np.divide(parts, total, out=uniform, where=total > 0)


def _subsample(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if X.shape[0] <= k:
        return X.copy()
    return X[np.sort(rng.choice(X.shape[0], k, replace=False))]


def _reservoir(buffer: np.ndarray, new: np.ndarray, n_seen: int, rng: np.random.Generator) -> np.ndarray:
    """A sample of ``REPLAY_ROWS`` rows in which every row seen so far has about the same chance.

    Each buffered row stands for ``n_old / len(buffer)`` earlier rows, each new row for itself.
    """
    pool = np.concatenate([buffer, new])
    if pool.shape[0] <= REPLAY_ROWS:
        return pool
    n_old = max(n_seen - new.shape[0], buffer.shape[0])
    weights = np.r_[np.full(buffer.shape[0], n_old / buffer.shape[0]), np.ones(new.shape[0])]
    keep = rng.choice(pool.shape[0], REPLAY_ROWS, replace=False, p=weights / weights.sum())
    return pool[np.sort(keep)]
