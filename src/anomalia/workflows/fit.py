"""``fit`` of tables: a CSV or Parquet file in, a saved model folder out; and what every fit shares
(:class:`FitResult`, ``--set`` parsing, the detector a run trains). The series and image fits are in
:mod:`.series` and :mod:`.images`; :func:`anomalia.workflows.fit` picks one of the three."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .._core import InputError, ParameterError
from ..data import TabularEncoder, as_labels, check_columns, label_like_warning, read_table
from ..detectors import BaseDetector, get_detector, make_detector
from ..model import Model, fit_labelled_threshold
from ..scoring import parse_threshold

log = logging.getLogger(__name__)

#: Share of anomalies assumed by ``contaminated=True`` when no ``contamination`` is given.
DEFAULT_CONTAMINATION = 0.05


@dataclass
class FitResult:
    """What a fit run did: the model, where it went, the data it saw, and its training history.

    ``n_rows`` counts rows, time steps or images (``kind`` says which); ``n_input_columns`` /
    ``n_features`` are input columns and encoded features (channels for series, pixels for images).
    """

    model: Model
    path: Path
    data: str
    kind: str
    n_rows: int
    n_excluded_anomalies: int
    n_train: int
    n_calibration: int
    n_input_columns: int
    n_features: int
    threshold: str
    threshold_value: float | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    step: str | None = None
    image_shape: tuple[int, ...] | None = None
    validation: dict[str, float] = field(default_factory=dict)
    #: Series: training and calibration windows left out because they hold a labelled anomaly step.
    n_excluded_windows: int = 0
    #: Images: labelled anomalous images (``test/<kind>/``) the threshold was fitted on.
    n_threshold_anomalies: int = 0
    #: Series: how the time column was read, in words ("ts: numbers read as Unix seconds ...").
    time_parsing: str | None = None

    @property
    def detector(self) -> str:
        return self.model.detector.name

    @property
    def epochs(self) -> int:
        return sum(len(h.get("train_loss", [])) for h in self.history)

    @classmethod
    def of(cls, model: Model, *, data: str | Path, n_rows: int, seconds: float, **extra: Any) -> FitResult:
        """The result of fitting ``model`` (its detector fitted) on ``n_rows`` of ``data``."""
        det = model.detector
        thr = det.threshold_
        assert model.path is not None, "the model is saved"
        values = {
            "n_excluded_anomalies": 0,
            "n_input_columns": det.n_features_in_,
            "n_features": det.n_features_in_,
            **extra,
        }
        return cls(
            model=model,
            path=model.path,
            data=str(data),
            kind=det.input_kind,
            n_rows=n_rows,
            n_train=int(det.n_train_rows_),
            n_calibration=int(det.calibration_scores_.size),
            threshold=(thr or det.threshold_rule()).spec,
            threshold_value=None if thr is None else float(thr.threshold_),
            seconds=seconds,
            history=list(getattr(det, "history_", [])),
            validation=dict(getattr(thr, "info_", {}) or {}) if thr is not None and thr.needs_labels else {},
            **values,
        )


def make_fit_detector(
    model: str,
    params: Iterable[str] | Mapping[str, Any] | None,
    *,
    threshold: str | None,
    seed: int | None,
    contaminated: bool = False,
) -> BaseDetector:
    """The detector a fit run trains: ``model`` with ``params``; ``threshold`` is the one place that sets the
    threshold (``--set threshold=...`` is refused, so two flags cannot disagree)."""
    kwargs = parse_params(model, params)
    if "threshold" in kwargs:
        raise ParameterError("set the threshold with --threshold SPEC (or 'threshold:' in the run file), not --set")
    kwargs.setdefault("random_state", seed)
    if contaminated:
        kwargs.setdefault("contamination", DEFAULT_CONTAMINATION)
    if threshold is not None:
        kwargs["threshold"] = parse_threshold(threshold).spec
    return make_detector(model, **kwargs)


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML scalars and lists (``64``, ``1e-3``, ``true``, ``null``, ``[64, 32]``)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as text
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_params(model: str, pairs: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Detector arguments from ``key=value`` strings (or a mapping); values are read as YAML.

    ``hidden=64,32`` and ``hidden=[64, 32]`` both give ``(64, 32)``; an unknown key raises
    :class:`ParameterError` listing the detector's arguments.
    """
    cls = get_detector(model)
    defaults = cls().get_params(deep=False)
    raw: dict[str, Any] = {}
    if isinstance(pairs, Mapping):
        raw = {str(k).replace("-", "_"): parse_value(v) if isinstance(v, str) else v for k, v in pairs.items()}
    else:
        for pair in pairs or ():
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ParameterError(f"--set takes key=value (e.g. --set epochs=50); got {pair!r}")
            raw[key.strip().replace("-", "_")] = parse_value(value.strip())
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        raise ParameterError(f"detector {model!r} has no parameter(s) {unknown}; it takes {sorted(defaults)}")
    out = {}
    for key, value in raw.items():
        if isinstance(value, str) and "," in value:  # hidden=64,32
            value = [parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if isinstance(value, list):  # layer sizes and other sequences are tuples in the constructors
            value = tuple(value)
        out[key] = value
    return out


def fit_file(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "autoencoder",
    params: Iterable[str] | Mapping[str, Any] | None = None,
    label_column: str | None = None,
    threshold: str | None = None,
    contaminated: bool = False,
    impute: str | None = None,
    max_categories: int = 50,
    drop: Sequence[str] = (),
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> FitResult:
    """Fit detector ``model`` on the normal rows of ``data`` and save it, with its encoding, to ``out``.

    Parameters
    ----------
    data : path
        CSV or Parquet file of (mostly) normal records.
    out : path
        Model folder to write.
    model : str
        Registered detector name (``anomalia models`` lists them).
    params : key=value strings or mapping
        Detector arguments.
    label_column : str, optional
        Column with 1 = anomaly, 0 = normal. Labelled anomalies are kept out of training and, with the held-out
        normal rows, fit thresholds that need labels (``best-f1``, ``precision:P``, ``recall:R``).
    threshold : str, optional
        Threshold spec; default ``false-alarm:0.01`` (or the contamination share when ``contaminated``).
    contaminated : bool
        The training data may hold unlabelled anomalies: robust training that leaves the highest-loss share
        out of each batch (``contamination``, default 5 %).
    impute : {None, "median"}
        Missing values: an error (None) or filled with fitted medians / most frequent values.
    max_categories, drop
        Text columns with more distinct values than this are an error; ``drop`` lists columns to ignore.
    seed : int, optional
        Random seed (``random_state`` of the detector) unless ``params`` sets one.
    callback : callable, optional
        ``callback(epoch, train_loss, val_loss)`` after each training epoch.
    """
    start = time.perf_counter()
    detector = make_fit_detector(model, params, threshold=threshold, seed=seed, contaminated=contaminated)
    if detector.input_kind != "table":
        raise InputError(f"{model!r} is a detector of {detector.input_kind}, not of table rows; use `anomalia fit`")
    rule = detector.threshold_rule()
    if rule.needs_labels and label_column is None:
        raise InputError(
            f"threshold '{rule.spec}' is fitted on labelled anomalies; pass --label-column with the column "
            "that marks them (1 = anomaly), or use 'false-alarm:ALPHA'"
        )

    needed = [c for c in (label_column, *drop) if c is not None]
    if needed:
        check_columns(data, needed)
    table = read_table(data)
    if table.num_rows == 0:
        raise InputError(f"{data} has a header but no rows; fit needs rows of normal data")
    labels = None
    if label_column is not None:
        labels = as_labels(table.column(label_column), label_column)
    encoder = TabularEncoder(max_categories=max_categories, impute=impute, exclude=[*drop, *needed])
    normal = table if labels is None else table.filter(labels == 0)
    if normal.num_rows == 0:
        raise InputError(f"{data}: every row is labelled as an anomaly in {label_column!r}; fit needs normal rows")
    X = encoder.fit(normal).transform(normal)
    names = encoder.feature_names
    warn_label_like(encoder.input_columns, "this fit")
    detector.fit(pd.DataFrame(X, columns=names, copy=False), callback=callback)

    n_anom = 0
    if labels is not None and (labels == 1).any():
        anomalies = table.filter(labels == 1)
        n_anom = anomalies.num_rows
        if rule.needs_labels:
            fit_labelled_threshold(detector, normal.num_rows, detector.anomaly_score(encoder.transform(anomalies)))
    elif rule.needs_labels:
        raise InputError(
            f"threshold '{rule.spec}' needs labelled anomalies, but {label_column!r} marks "
            "none in this file; use 'false-alarm:ALPHA' or label some anomalies"
        )

    fitted = Model(detector, encoder, name=Path(out).name, label_column=label_column)
    fitted.save(out)
    return FitResult.of(
        fitted,
        data=data,
        n_rows=table.num_rows,
        seconds=time.perf_counter() - start,
        n_excluded_anomalies=n_anom,
        n_input_columns=len(encoder.input_columns),
        n_features=len(names),
    )


def warn_label_like(columns: Sequence[str], where: str) -> None:
    """Log a warning when one of the feature ``columns`` looks like a label column (``label``, ``target``...)."""
    message = label_like_warning(columns, where)
    if message is not None:
        log.warning("%s", message)
