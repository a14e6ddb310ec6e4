"""The estimator contract every detector follows.

``fit`` validates the normal data, holds a part out, trains on the rest (the subclass's ``_fit``), scores
the held-out part to calibrate conformal p-values (a :class:`~anomalia.scoring.Calibrator`), and fits the
threshold on those scores. Subclasses implement ``_fit``, ``_score`` and, for ``explain``,
``_feature_scores``; they own their learned state through ``_get_state`` / ``_set_state`` (calling
``super()``), which :mod:`anomalia.detectors.persist` writes with :mod:`anomalia.bundle`.

Constructor arguments are declared once, as annotated class attributes with their defaults: every detector
class is a dataclass whose generated ``__init__`` only stores them (scikit-learn's rule), with the
arguments shared by a family (``threshold``, ``epochs``, ...) declared on the family's base and keyword-only.
A subclass re-declares a shared argument only to change its default. ``get_params`` / ``clone`` read the
generated, explicit signature.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import KW_ONLY
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
from ..scoring import Calibrator, Contamination, FalseAlarmRate, Threshold, parse_threshold

log = logging.getLogger(__name__)

#: Held-out normal rows kept for calibration at most; the rest of the data trains the model.
MAX_CALIBRATION_ROWS = 5000
#: Earlier normal rows kept (in memory, or saved with ``keep_rows``) to mix into ``partial_fit``.
REPLAY_ROWS = 2000
#: The quantiles of held-out normal values shown as a feature's normal range in explanations.
NORMAL_RANGE = (0.005, 0.995)
#: Held-out rows at most whose per-feature parts give each feature's normal error scale.
MAX_SCALE_ROWS = 2000

COMMON_RULES: dict[str, list[Rule]] = {
    "contamination": [interval(0.0, 0.5, closed="right"), options(None)],
    "threshold": [instance_of(str, Threshold, text="a threshold spec like 'false-alarm:0.01'"), options(None)],
    "calibration_fraction": [interval(0.0, 0.9, closed="neither")],
    "keep_rows": [options(True, False)],
}

#: What ``input_kind`` a detector declares: the modality the workflows dispatch on.
INPUT_KINDS = ("table", "series", "images", "text", "multimodal")


def _params_dataclass(cls: type) -> type:
    """Make ``cls`` a dataclass whose ``__init__`` stores its declared arguments (no eq, repr: scikit-learn's)."""
    return dataclasses.dataclass(eq=False, repr=False)(cls)


@_params_dataclass
class BaseDetector(OutlierMixin, BaseEstimator):
    """Base of all detectors: scikit-learn conventions plus ``anomaly_score``, ``p_value``, ``is_anomaly``.

    Scales: ``anomaly_score`` is higher for anomalies (the scale of thresholds, metrics and reports);
    ``score_samples`` is its negation (scikit-learn: higher is more normal); ``predict`` gives -1 for
    anomalies and 1 for normal rows; ``decision_function`` is negative for anomalies.

    Shared parameters
    -----------------
    contamination : float, optional
        Share of anomalies the training data may hold: robust training, and (unless ``threshold`` says
        otherwise) the default threshold flags that share of held-out data.
    threshold : str or Threshold, optional
        The decision rule, e.g. ``"false-alarm:0.01"`` (the default), ``"pot:1e-4"``, ``"best-f1"``; a
        :class:`~anomalia.scoring.Threshold` object keeps all its parameters.
    calibration_fraction : float
        Share of the normal data held out (at most 5,000 rows) for conformal calibration.
    keep_rows : bool
        Save a sample of up to 2,000 training and 2,000 held-out rows with the model, so that
        ``partial_fit`` after loading replays the old normal and recalibrates on it. By default a saved
        model holds no data rows (weights, statistics and scores only); the sample lives in memory only.
    random_state : int, Generator or None
        Seed of every random draw of ``fit``; same seed, same scores.

    Learned attributes: ``schema_``, ``n_features_in_`` (``feature_names_in_`` for DataFrames),
    ``calibrator_`` (held-out normal scores), ``threshold_`` (the fitted rule), ``feature_median_``
    (the typical value of each feature, used by occlusion), ``seed_``, ``n_train_rows_``, ``n_updates_``.
    """

    name: ClassVar[str] = "base"
    #: The modality: "table" (rows of features), "series" (time steps), "images", "text" (one string per
    #: record) or "multimodal" (records of several parts).
    input_kind: ClassVar[str] = "table"
    #: Number of array dimensions of one ``X`` (2 for tables; images override).
    input_ndim: ClassVar[int] = 2
    #: Argument rules checked at ``fit`` (name -> allowed forms).
    parameter_rules: ClassVar[dict[str, list[Rule]]] = {}
    #: Cheap settings for the contract tests.
    test_params: ClassVar[dict[str, Any]] = {}
    #: True when a NaN or inf in the input always makes the score non-finite (the input is part of the score,
    #: as in a reconstruction error): scoring then checks the scores instead of making an extra pass over X.
    nonfinite_propagates: ClassVar[bool] = False

    _: KW_ONLY
    contamination: float | None = None
    threshold: str | Threshold | None = None
    calibration_fraction: float = 0.2
    keep_rows: bool = False
    random_state: RandomState = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _params_dataclass(cls)

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

    def _score_parts(
        self, X: np.ndarray, above: float | None, reduce: Reduce | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Scores of every row, the rows whose parts are wanted (score > ``above``; all for None), their parts.

        Default: the parts come from :meth:`_feature_scores` on those rows (None when the detector has no
        decomposition). Deep detectors override it to get both from one forward pass.
        """
        scores = self._score(X)
        rows = np.arange(scores.size) if above is None else np.flatnonzero(scores > above)
        try:
            parts = self._feature_scores(X[rows]) if rows.size else np.zeros((0, self.schema_.n_features))
        except NotImplementedError:
            return scores, rows, None
        return scores, rows, apply_reduce(reduce, parts)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Everything learned, as (JSON-able dict, named arrays); subclasses add to ``meta["state"]``."""
        meta: dict[str, Any] = {
            "schema": self.schema_.to_dict(),
            "training": {"seed": self.seed_, "n_train_rows": self.n_train_rows_, "n_updates": self.n_updates_},
            "calibration": self.calibrator_.to_dict(),
            "threshold": None if self.threshold_ is None else self.threshold_.to_dict(),
            "state": {},
        }
        arrays = {"feature_median": self.feature_median_}
        for key in ("feature_scale", "feature_low", "feature_high"):
            if getattr(self, key + "_", None) is not None:
                arrays[f"explain.{key}"] = np.asarray(getattr(self, key + "_"), dtype=np.float64)
        if self.keep_rows and hasattr(self, "replay_"):
            arrays["buffer.replay"] = self.replay_
            arrays["buffer.calibration_rows"] = self.calibration_rows_
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_get_state` gave (``meta`` is the manifest's detector section)."""
        self.schema_ = Schema.from_dict(meta["schema"])
        self.n_features_in_ = self.schema_.n_features
        if self.schema_.columns is not None:
            self.feature_names_in_ = np.asarray(self.schema_.columns, dtype=object)
        training = meta["training"]
        self.seed_ = int(training["seed"])
        self.n_train_rows_ = int(training["n_train_rows"])
        self.n_updates_ = int(training["n_updates"])
        self.calibrator_ = Calibrator.from_dict(meta["calibration"])
        self.threshold_ = None if meta["threshold"] is None else Threshold.from_dict(meta["threshold"])
        if "buffer.replay" in arrays:  # saved with keep_rows (or by anomalia 0.1, which always kept them)
            self.replay_ = arrays["buffer.replay"]
            self.calibration_rows_ = arrays["buffer.calibration_rows"]
        for key in ("feature_scale", "feature_low", "feature_high"):  # saved since 0.2; None in older folders
            setattr(self, key + "_", arrays.get(f"explain.{key}"))
        if "feature_median" in arrays:
            self.feature_median_ = arrays["feature_median"]
        elif hasattr(self, "replay_"):  # 0.1: the median of the replayed rows, as its occlusion used
            self.feature_median_ = _median(self.replay_)

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

    def threshold_rule(self) -> Threshold:
        """The (unfitted) decision rule the ``threshold`` argument names; default ``false-alarm:0.01``, or
        ``contamination:c`` when only ``contamination`` is set."""
        if self.threshold is not None:
            return parse_threshold(self.threshold)
        if self.contamination is not None:
            return Contamination(self.contamination)
        return FalseAlarmRate(0.01)

    def _split(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indices of training and calibration rows."""
        n_cal = min(max(1, round(self.calibration_fraction * n)), MAX_CALIBRATION_ROWS, n - 2)
        perm = rng.permutation(n)
        return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])

    def _start_fit(self, schema: Schema, rng: np.random.Generator) -> None:
        self.seed_ = child_seed(rng)
        self.schema_ = schema
        self.n_features_in_ = schema.n_features
        if schema.columns is not None:
            self.feature_names_in_ = np.asarray(schema.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_updates_ = 0

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
        self._start_fit(schema, rng)
        train_idx, cal_idx = self._split(arr.shape[0], rng)
        self.n_train_rows_ = int(train_idx.size)
        self._fit(arr[train_idx], rng, callback)
        self.replay_ = _subsample(arr[train_idx], REPLAY_ROWS, rng)
        self.calibration_rows_ = _subsample(arr[cal_idx], REPLAY_ROWS, rng)
        self._calibrate(self._score(arr[cal_idx]))
        self._learn_normal(arr[cal_idx])
        return self

    def _learn_normal(self, rows: np.ndarray) -> None:
        """What explanations compare a row against, after ``fit``: the per-feature median of the replay
        sample (``feature_median_``, the value occlusion and counterfactuals put in) and, from held-out
        normal ``rows``, each feature's usual part of the score and normal range."""
        self.feature_median_ = _median(self.replay_)
        self._learn_normal_parts(rows)

    def _learn_normal_parts(self, rows: np.ndarray, skip: int = 0) -> None:
        """What explanations compare against, from held-out normal ``rows`` (tables and series only):
        ``feature_scale_``, each feature's mean part of the score (None without a decomposition), and
        ``feature_low_`` / ``feature_high_``, its normal range (the 0.5 % and 99.5 % quantiles of its values).
        ``skip`` leading rows are context only (the warm-up of a series)."""
        self.feature_scale_ = self.feature_low_ = self.feature_high_ = None
        if self.input_kind == "images" or rows.shape[0] <= skip:
            return
        values = rows[skip:].reshape(rows.shape[0] - skip, -1)
        low, high = np.quantile(values, [NORMAL_RANGE[0], NORMAL_RANGE[1]], axis=0)
        self.feature_low_, self.feature_high_ = low.astype(np.float64), high.astype(np.float64)
        try:
            parts = np.asarray(self._feature_scores(rows[-MAX_SCALE_ROWS - skip :]), dtype=np.float64)[skip:]
        except NotImplementedError:
            return
        scale = np.maximum(parts, 0.0).mean(axis=0) if parts.shape[0] else np.ones(values.shape[1])
        self.feature_scale_ = np.maximum(scale, max(float(scale.max()), 1e-12) * 1e-6)

    def expected(self, X: Any) -> np.ndarray | None:
        """The values the model expected for each row (a reconstruction, or a forecast), in the input's units;
        None for a detector that makes no such prediction (isolation forest, PCA)."""
        return None

    def _calibrate(self, calibration_scores: np.ndarray) -> None:
        self.calibrator_ = Calibrator(calibration_scores)
        rule = self.threshold_rule()
        # a streaming threshold (DSPOT) follows the scores in time order; the others are fitted on them sorted
        scores = calibration_scores if rule.streaming else self.calibrator_.scores
        self.threshold_ = None if rule.needs_labels else rule.fit(scores)

    def partial_fit(self, X: Any, y: Any = None, *, callback: Any = None) -> BaseDetector:
        """Keep learning from new normal rows ``X`` without forgetting the old normal.

        Training continues from the current state on ``X`` mixed with an equal number of replayed earlier
        normal rows (when the detector holds them: after ``fit``, or loaded with ``keep_rows``); calibration
        is refreshed on the old and new held-out rows (without the old rows: on the new held-out scores
        together with the earlier calibration scores). Unfitted: same as ``fit``.
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
        rows = hasattr(self, "replay_")
        replay = self.replay_[rng.permutation(self.replay_.shape[0])[: new_train.shape[0]]] if rows else new_train[:0]
        self._update(np.concatenate([new_train, replay]), rng, callback)
        self.n_train_rows_ += int(train_idx.size)
        if rows:
            self.replay_ = _reservoir(self.replay_, new_train, self.n_train_rows_, rng)
            cal = _subsample(np.concatenate([self.calibration_rows_, arr[cal_idx]]), REPLAY_ROWS, rng)
            self.calibration_rows_ = cal
            self._calibrate(self._score(cal))
        else:
            self._calibrate(np.r_[self.calibrator_.scores, self._score(arr[cal_idx])])
        return self

    # ------------------------------------------------------------------ scoring and deciding
    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score per row, shape (n,), float64; higher = more anomalous."""
        check_is_fitted(self)
        arr, schema = self._validate(X, fitting=False, finite=not self.nonfinite_propagates)
        scores = self._score(arr)
        self._check_scores(scores, arr, schema)
        return scores

    def _check_scores(self, scores: np.ndarray, arr: np.ndarray, schema: Schema) -> None:
        if self.nonfinite_propagates and not np.isfinite(scores).all():
            check_finite(arr, columns=schema.columns)  # names the bad rows and columns

    def score_parts(
        self, X: Any, *, above: float | None = None, reduce: Reduce | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Scores of every row and, in the same pass, the per-feature parts of some rows' scores.

        Returns ``(scores, rows, parts)``: ``rows`` are the rows scoring above ``above`` (every row for
        None), ``parts`` their non-negative per-feature parts, shape (len(rows), n_features), or None for a
        detector without a decomposition (use occlusion). Deep detectors run their network once for both.
        ``reduce`` maps each batch of parts (a float32 tensor, rows x features) to a few values per row
        (rows x m), so that a top-k of the features never needs every row's parts in memory at once.
        """
        check_is_fitted(self)
        arr, schema = self._validate(X, fitting=False, finite=not self.nonfinite_propagates)
        scores, rows, parts = self._score_parts(arr, above, reduce)
        self._check_scores(scores, arr, schema)
        return scores, rows, parts

    @property
    def calibration_scores_(self) -> np.ndarray:
        """The held-out normal scores, sorted (``calibrator_.scores``)."""
        check_is_fitted(self)
        return self.calibrator_.scores

    def p_value(self, X: Any) -> np.ndarray:
        """Conformal p-value per row in (0, 1]: small when few held-out normal rows scored as high."""
        return self.calibrator_.p_values(self.anomaly_score(X))

    def fitted_threshold(self) -> Threshold:
        """The fitted decision rule ``threshold_``; a clear error when it still needs labels."""
        check_is_fitted(self)
        if self.threshold_ is None:
            spec = self.threshold_rule().spec
            raise NotFittedError(
                f"threshold '{spec}' needs labels: call fit_threshold(X_val, y_val) with a labelled validation set"
            )
        return self.threshold_

    def decide(self, scores: Any) -> np.ndarray:
        """Boolean decision per score with the fitted threshold (``threshold_``); scores from ``anomaly_score``."""
        return self.fitted_threshold().predict(scores)

    def is_anomaly(self, X: Any) -> np.ndarray:
        """Boolean decision per row using the fitted threshold (``threshold_``)."""
        return self.decide(self.anomaly_score(X))

    def fit_threshold(
        self,
        X: Any = None,
        y: Any = None,
        threshold: str | Threshold | None = None,
        *,
        scores: Any = None,
    ) -> BaseDetector:
        """(Re)fit the decision threshold ``threshold_``.

        With ``X`` (and ``y`` for labelled thresholds such as ``"best-f1"`` or ``"precision:0.9"``) the
        threshold is fitted on the scores of ``X`` (or on ``scores`` given directly); without either, on
        the held-out calibration scores. ``threshold`` names another rule for this fit; the constructor's
        ``threshold`` argument is left as it is.
        """
        check_is_fitted(self)
        rule = self.threshold_rule() if threshold is None else parse_threshold(threshold)
        if scores is None:
            scores = self.calibrator_.scores if X is None else self.anomaly_score(X)
        if rule.needs_labels and y is None:
            raise InputError(f"threshold '{rule.spec}' needs labels: pass y (1 = anomaly, 0 = normal) with X")
        self.threshold_ = rule.fit(scores, y)
        return self

    # scikit-learn's names, with scikit-learn's meaning
    @property
    def offset_(self) -> float:
        return -self.fitted_threshold().threshold_

    def score_samples(self, X: Any) -> np.ndarray:
        """Negated anomaly score (scikit-learn: higher = more normal)."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``threshold - anomaly_score``: negative for anomalies (scikit-learn's convention)."""
        return self.fitted_threshold().threshold_ - self.anomaly_score(X)

    def predict(self, X: Any) -> np.ndarray:
        """-1 for anomalies, 1 for normal rows (scikit-learn's convention)."""
        return np.where(self.is_anomaly(X), -1, 1)

    # ------------------------------------------------------------------ explanations and saving
    def explain(self, X: Any) -> np.ndarray:
        """Each feature's share of each row's score, shape (n, n_features); rows sum to 1."""
        check_is_fitted(self)
        arr, _ = self._validate(X, fitting=False)
        return normalise_shares(self._feature_scores(arr))

    def save(self, path: Any) -> Any:
        """Save to a model folder (one manifest + safetensors, atomic); see :func:`anomalia.load`."""
        from .persist import save  # same layer: persist builds on this module

        return save(self, path)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


#: ``reduce(parts)``: a batch of per-feature parts (float32 tensor, rows x features) -> per-row values (rows x m).
Reduce = Callable[[Any], Any]


def apply_reduce(reduce: Reduce | None, parts: np.ndarray) -> np.ndarray:
    """``reduce`` applied to numpy ``parts`` (in batches), or ``parts`` as they are without one."""
    if reduce is None or parts.shape[0] == 0:
        return parts if reduce is None else np.zeros((0, 0), np.float32)
    import torch  # the detectors package has it; this module is imported without it by the tabular baselines

    flat = np.ascontiguousarray(parts.reshape(parts.shape[0], -1), dtype=np.float32)
    chunks = [reduce(torch.from_numpy(flat[i : i + 8192])).numpy() for i in range(0, flat.shape[0], 8192)]
    return np.concatenate(chunks)


def normalise_shares(parts: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Rows of non-negative parts scaled to sum to 1 (uniform where a row is all zero), as ``dtype``."""
    parts = np.asarray(parts).reshape(parts.shape[0], -1)
    out = np.maximum(parts, 0.0, dtype=dtype)  # a new array: the input is never changed
    total = out.sum(axis=1, keepdims=True)
    zero = total[:, 0] <= 0
    total[zero] = 1.0
    out /= total
    if zero.any():
        out[zero] = 1.0 / out.shape[1]
    return out


def _median(X: np.ndarray) -> np.ndarray:
    return np.median(X.reshape(X.shape[0], -1), axis=0).astype(np.float32)


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
