"""Is my normal data enough? (``anomalia diagnose DATA``, ``an.diagnose(X)``)

Four checks on a set of normal rows, without labels:

- **learning curve**: the detector is fitted on growing shares of the rows (1/8, 1/4, 1/2, all of the
  rows not held out) and scored on held-out normal rows against synthetic anomalies made from them (some
  features of a row replaced by values drawn across that feature's range, and rows whose features are drawn
  independently, which breaks their dependence). ROC-AUC still rising means more data helps; the score
  stability (Spearman rank correlation of the scores with those of the previous, smaller fit) says how much
  the model still moves.
- **calibration**: a conformal p-value can only reach ``1 / (n_cal + 1)``; flagging at a false-alarm rate
  ``alpha`` needs at least ``ceil(1 / alpha) - 1`` calibration scores (999 for alpha = 0.001). With the
  detector's ``calibration_fraction`` that is a number of rows; the check says how many more are needed.
- **features**: constant columns (nothing to learn), near-duplicates (|correlation| > 0.999), and leaky
  ID-like columns (every value distinct, and for numbers evenly increasing: row numbers, counters,
  timestamps), which a model learns the range of and then flags every new id.
- **recommendation**: the above in plain words.

The synthetic anomalies are a yardstick for comparing sizes, not a promise of how real anomalies score.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputError, ParameterError, check_random_state, child_seed
from ..detectors import BaseDetector, make_detector
from ..detectors.base import MAX_CALIBRATION_ROWS

#: Shares of the training pool the learning curve fits on.
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
#: Held-out normal rows that the learning curve scores (at most; 20 % of the rows below that).
PROBE_ROWS = 2000
#: Fewest rows a curve point trains on.
MIN_CURVE_ROWS = 20
#: |correlation| above which two columns count as near-duplicates.
DUPLICATE_CORRELATION = 0.999
#: A rise in ROC-AUC from the second-largest to the largest fit above which "more data helps".
STILL_RISING = 0.01
#: Rank correlation with the previous fit below which the scores are "still moving".
STABLE = 0.9


@dataclass
class CurvePoint:
    """One fit of the learning curve."""

    n_train: int
    roc_auc: float
    stability: float | None  # Spearman correlation with the previous point's scores; None for the first


@dataclass
class CalibrationCheck:
    """Calibration scores the data gives against those ``alpha`` needs."""

    alpha: float
    calibration_fraction: float
    n_calibration: int
    needed: int
    more_rows: int
    smallest_alpha: float


@dataclass
class FeatureWarning:
    column: str
    kind: str  # "constant", "near-duplicate" or "id-like"
    message: str


@dataclass
class Diagnosis:
    """What :func:`diagnose` found (``to_dict`` for JSON, ``evaluation()`` for the HTML report)."""

    data: str
    detector: str
    n_rows: int
    n_features: int
    curve: list[CurvePoint]
    calibration: CalibrationCheck
    warnings: list[FeatureWarning]
    recommendation: str
    #: The largest fit of the curve and its scores on the held-out normal rows and synthetic anomalies.
    model: BaseDetector | None = field(default=None, repr=False)
    probe: np.ndarray | None = field(default=None, repr=False)
    probe_labels: np.ndarray | None = field(default=None, repr=False)
    feature_names: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "detector": self.detector,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "curve": [asdict(p) for p in self.curve],
            "calibration": asdict(self.calibration),
            "warnings": [asdict(w) for w in self.warnings],
            "recommendation": self.recommendation,
        }

    def evaluation(self) -> Any:
        """An :class:`~anomalia.results.Evaluation` of the largest fit on held-out normal rows against the
        synthetic anomalies, with the diagnosis in ``extras["diagnosis"]`` (the report draws both)."""
        from .evaluate import evaluate_arrays

        if self.model is None or self.probe is None:
            raise InputError("this diagnosis holds no fitted model to report on")
        ev = evaluate_arrays(
            self.model,
            self.probe,
            self.probe_labels,
            feature_names=self.feature_names,
            title=f"Is the normal data of {self.data} enough?",
            data=f"{self.data}: held-out normal rows (0) and synthetic anomalies (1)",
        )
        ev.extras["diagnosis"] = self.to_dict()
        return ev


# ---------------------------------------------------------------------------------------------- checks
def calibration_check(n_rows: int, alpha: float, calibration_fraction: float = 0.2) -> CalibrationCheck:
    """How many calibration scores ``n_rows`` give (as ``fit`` holds them out) against what ``alpha`` needs."""
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be a false-alarm rate between 0 and 1; got {alpha!r}")
    n_cal = int(min(max(1, round(calibration_fraction * n_rows)), MAX_CALIBRATION_ROWS, max(1, n_rows - 2)))
    needed = math.ceil(1.0 / alpha - 1e-9) - 1
    more = 0
    if n_cal < needed:
        more = max(0, math.ceil(needed / calibration_fraction) - n_rows)
    return CalibrationCheck(alpha, calibration_fraction, n_cal, needed, int(more), 1.0 / (n_cal + 1))


def feature_warnings(frame: Any) -> list[FeatureWarning]:
    """Constant, near-duplicate and ID-like columns of a DataFrame (or a numeric array: columns x0, x1...)."""
    import pandas as pd

    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(np.asarray(frame), copy=False)
    df.columns = [str(c) if isinstance(frame, pd.DataFrame) else f"x{c}" for c in df.columns]
    n = len(df)
    out: list[FeatureWarning] = []
    numeric: list[str] = []
    for name in df.columns:
        col = df[name]
        distinct = col.nunique(dropna=True)
        if distinct <= 1:
            out.append(FeatureWarning(name, "constant", "one value in every row: it carries nothing; drop it"))
            continue
        if n >= 20 and distinct == n:
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                values = col.to_numpy(dtype=np.float64)
                steps = np.diff(values)
                integral = np.all(np.mod(values, 1) == 0)
                if integral and steps.size and (np.all(steps > 0) or np.all(steps < 0)):
                    out.append(
                        FeatureWarning(
                            name,
                            "id-like",
                            "every value is distinct and they run in order (a row number, counter or time "
                            "stamp): new rows fall outside its range and look anomalous; drop it",
                        )
                    )
                    continue
            elif not pd.api.types.is_numeric_dtype(col):
                out.append(
                    FeatureWarning(name, "id-like", "text with a distinct value in every row (an identifier); drop it")
                )
                continue
        if pd.api.types.is_numeric_dtype(col):
            numeric.append(name)
    if len(numeric) >= 2:
        values = df[numeric[:200]].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(values, rowvar=False)
        seen: set[str] = set()
        for i, j in zip(*np.nonzero(np.triu(np.abs(np.nan_to_num(corr)) > DUPLICATE_CORRELATION, k=1)), strict=True):
            a, b = numeric[i], numeric[j]
            if b in seen:
                continue
            seen.add(b)
            out.append(
                FeatureWarning(
                    b, "near-duplicate", f"a near copy of {a!r} (correlation {corr[i, j]:+.4f}): keep one of them"
                )
            )
    return out


def synthetic_anomalies(X: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many anomalies as rows of ``X``: half of them rows of ``X`` with a quarter of their features (at
    least one) drawn uniformly across the feature's range in ``pool`` (widened by 10 %), half rows whose every
    feature comes from a different random row of ``pool`` (the dependence between features broken)."""
    n, d = X.shape
    lo, hi = pool.min(axis=0), pool.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - 0.1 * width, hi + 0.1 * width
    half = n // 2
    local = X[:half].copy()
    k = max(1, d // 4)
    for i in range(half):
        cols = rng.choice(d, size=k, replace=False)
        local[i, cols] = rng.uniform(lo[cols], hi[cols])
    mixed = pool[rng.integers(0, pool.shape[0], size=(n - half, d)), np.arange(d)]
    return np.concatenate([local, mixed]).astype(np.float32)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def _roc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def recommend(curve: Sequence[CurvePoint], cal: CalibrationCheck, warnings: Sequence[FeatureWarning]) -> str:
    """The checks in plain words."""
    parts: list[str] = []
    drop = [w.column for w in warnings if w.kind in ("id-like", "constant")]
    if drop:
        flags = " ".join(f"--drop {c}" for c in drop[:5])
        parts.append(f"Drop {', '.join(repr(c) for c in drop[:5])} before fitting ({flags}).")
    dupes = [w.column for w in warnings if w.kind == "near-duplicate"]
    if dupes:
        parts.append(f"{', '.join(repr(c) for c in dupes[:5])} duplicate other columns; keeping one of each is enough.")
    if len(curve) >= 2:
        last, prev = curve[-1], curve[-2]
        rise = last.roc_auc - prev.roc_auc
        if rise > STILL_RISING:
            parts.append(
                f"The learning curve is still rising (ROC-AUC on synthetic anomalies {prev.roc_auc:.3f} with "
                f"{prev.n_train:,} rows, {last.roc_auc:.3f} with {last.n_train:,}): more normal data should help."
            )
        else:
            parts.append(
                f"The learning curve has levelled off (ROC-AUC {prev.roc_auc:.3f} with {prev.n_train:,} rows, "
                f"{last.roc_auc:.3f} with {last.n_train:,}): more of the same data will add little."
            )
        if last.stability is not None and last.stability < STABLE:
            parts.append(
                f"The scores still move as rows are added (rank correlation {last.stability:.2f} with the previous "
                "fit): expect decisions near the threshold to change with more data."
            )
    if cal.more_rows > 0:
        parts.append(
            f"For a false-alarm rate of {cal.alpha:g} the calibration needs at least {cal.needed:,} held-out normal "
            f"scores; these rows give {cal.n_calibration:,}. Add about {cal.more_rows:,} more normal rows, or flag "
            f"at a false-alarm rate of at least {cal.smallest_alpha:.2g}."
        )
    else:
        parts.append(
            f"The {cal.n_calibration:,} calibration scores are enough for a false-alarm rate of {cal.alpha:g} "
            f"(it needs {cal.needed:,})."
        )
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------- entry points
def diagnose(
    X: Any,
    *,
    alpha: float = 0.01,
    model: str = "autoencoder",
    params: Mapping[str, Any] | None = None,
    fractions: Sequence[float] = FRACTIONS,
    random_state: int | None = 0,
    data: str = "in-memory data",
    column_warnings: Sequence[FeatureWarning] | None = None,
) -> Diagnosis:
    """Is the normal data ``X`` enough? See the module docstring for the checks.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_rows, n_features)
        Normal rows, numeric (a DataFrame's text columns are only checked for ID-likeness; encode tables
        with text through :func:`diagnose_file`).
    alpha : float
        The false-alarm rate to flag at.
    model : str
        Registered detector for the learning curve (a table detector); ``params`` its arguments.
    fractions : sequence of float
        Shares of the training pool the curve fits on (increasing, ending at 1).
    random_state : int or None
        Seed of the split, the synthetic anomalies and the fits.
    data : str
        What the data is called in the diagnosis and its report.
    column_warnings : list of FeatureWarning, optional
        Warnings already found on the raw columns (``diagnose_file`` passes those of the file's columns).

    Returns
    -------
    Diagnosis
    """
    import pandas as pd

    if not isinstance(X, pd.DataFrame):
        raw = np.asarray(X)
        if raw.ndim != 2 or raw.size == 0:
            raise InputError(f"X must be a non-empty 2-D array (rows, features); got shape {raw.shape}")
        X = pd.DataFrame(raw, columns=[f"x{i}" for i in range(raw.shape[1])])
    warnings = list(column_warnings) if column_warnings is not None else feature_warnings(X)
    # ID-like and constant columns stay out of the fits: they are reported, and would only mislead the curve
    leave_out = {w.column for w in warnings if w.kind in ("id-like", "constant")}
    X = X[[c for c in X.columns if str(c) not in leave_out]]
    numeric = X.select_dtypes("number")
    dropped = [c for c in X.columns if c not in numeric.columns]
    if dropped:
        raise InputError(
            f"columns {dropped[:5]} are not numeric; give numbers, or diagnose the file "
            "(anomalia diagnose DATA), which encodes text columns as anomalia fit does"
        )
    if numeric.shape[1] == 0:
        raise InputError("no column is left to learn from (every one is constant or ID-like); see the warnings")
    names = [str(c) for c in numeric.columns]
    arr = numeric.to_numpy(dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InputError("X holds NaN or infinite values; fill or drop them first")
    fr = sorted(float(f) for f in fractions)
    if not fr or fr[0] <= 0 or fr[-1] != 1.0:
        raise ParameterError(f"fractions must be increasing shares in (0, 1] ending at 1; got {list(fractions)}")
    det0 = make_detector(model, **dict(params or {}))
    if det0.input_kind != "table":
        raise ParameterError(f"diagnose fits a table detector; {model!r} reads {det0.input_kind}")
    n = arr.shape[0]
    cal = calibration_check(n, alpha, det0.calibration_fraction)
    n_probe = min(PROBE_ROWS, max(10, round(0.2 * n)))
    if n - n_probe < MIN_CURVE_ROWS:
        raise InputError(
            f"X has {n} rows; the learning curve needs at least {MIN_CURVE_ROWS + 10} (fits on growing shares plus "
            "held-out rows). With this few rows the answer is: not enough, collect more normal data"
        )
    rng = check_random_state(random_state)
    perm = rng.permutation(n)
    probe_normal, pool = arr[perm[:n_probe]], arr[perm[n_probe:]]
    anomalies = synthetic_anomalies(probe_normal, pool, rng)
    probe = np.concatenate([probe_normal, anomalies])
    labels = np.r_[np.zeros(n_probe, np.int64), np.ones(anomalies.shape[0], np.int64)]
    sizes = sorted({max(MIN_CURVE_ROWS, round(f * pool.shape[0])) for f in fr})
    seed = child_seed(rng)
    curve: list[CurvePoint] = []
    previous: np.ndarray | None = None
    det: BaseDetector | None = None
    quiet = logging.getLogger("anomalia.scoring")  # small fits warn that their threshold is coarse: known here
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for size in sizes:
            det = make_detector(model, **{**dict(params or {}), "random_state": seed})
            det.fit(pool[:size])
            scores = det.anomaly_score(probe)
            stability = None if previous is None else _spearman(previous, scores)
            curve.append(CurvePoint(int(det.n_train_rows_), _roc(labels, scores), stability))
            previous = scores
    finally:
        quiet.setLevel(level)
    return Diagnosis(
        data=data,
        detector=model,
        n_rows=n,
        n_features=arr.shape[1],
        curve=curve,
        calibration=cal,
        warnings=warnings,
        recommendation=recommend(curve, cal, warnings),
        model=det,
        probe=probe,
        probe_labels=labels,
        feature_names=names,
    )


def diagnose_file(
    data: str | Path,
    *,
    alpha: float = 0.01,
    model: str = "autoencoder",
    params: Mapping[str, Any] | None = None,
    drop: Sequence[str] = (),
    label_column: str | None = None,
    random_state: int | None = 0,
) -> Diagnosis:
    """:func:`diagnose` of a CSV or Parquet file of normal rows, its columns encoded as ``anomalia fit`` does.

    Rows labelled 1 in ``label_column`` are left out; ID-like and constant columns are reported and left out
    of the learning curve.
    """
    from ..data import TabularEncoder, as_labels, read_table

    table = read_table(data)
    missing = [c for c in [*drop, *([label_column] if label_column else [])] if c not in table.schema.names]
    if missing:
        raise InputError(f"{data} has no column {missing[0]!r}")
    if label_column is not None:
        y = as_labels(table.column(label_column), label_column)
        table = table.filter(np.asarray(y == 0)).drop_columns([label_column])
    table = table.drop_columns(list(drop))
    frame = table.to_pandas()
    warnings = feature_warnings(frame)
    skip = {w.column for w in warnings if w.kind in ("id-like", "constant")}
    enc = TabularEncoder(exclude=tuple(skip)).fit(table)
    X = enc.transform(table)
    import pandas as pd

    encoded = pd.DataFrame(X, columns=enc.feature_names)
    return diagnose(
        encoded,
        alpha=alpha,
        model=model,
        params=params,
        random_state=random_state,
        data=str(data),
        column_warnings=warnings,  # the file's columns, not their one-hot codes
    )
