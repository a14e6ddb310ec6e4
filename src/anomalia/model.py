"""A model folder as everything above the detectors uses it: preprocessing + detector + calibration +
threshold, loaded from one folder (one manifest read, one weights file), for every modality.

:meth:`Model.score` is the one scoring step: a table (pyarrow / pandas / numpy) of records, a series frame,
or images (an array or image files) in, :class:`~anomalia.results.ScoredRows` out, with the p-values, the
decisions and the top contributing features computed in the same pass as the scores. The command line, the
service, the stream runner and distributed workers all call it.

The preprocessing is part of the manifest (``"preprocess"``): a :class:`~anomalia.data.TabularEncoder` for
tables read from files, an :class:`~anomalia.data.ImageReading` for image files, nothing for series (their
time column, resampling and fill are detector arguments) or for detectors fitted on numeric arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from . import bundle
from ._core import BundleError, InputError, ParameterError
from .data import MAX_CATEGORIES, ImageReading, TabularEncoder, as_arrow
from .detectors import BaseDetector
from .detectors.base import apply_reduce
from .detectors.persist import detector_section, from_section
from .explain import occlusion
from .explain.counterfactual import CANDIDATES, counterfactual_top
from .results import Contributions, ScoredRows

log = logging.getLogger(__name__)

#: A labelled threshold that finds fewer than this share of the labelled anomalies is warned about at fit.
LOW_RECALL = 0.2

#: Which rows get their top contributing features: every row, flagged rows only, or none.
EXPLAIN_OPTIONS = ("all", "flagged", "none")

Preprocess = TabularEncoder | ImageReading | None


@dataclass
class Model:
    """A fitted detector with the preprocessing in front of it, its name and version.

    Parameters
    ----------
    detector : BaseDetector
        A fitted detector.
    preprocess : TabularEncoder or ImageReading, optional
        How raw input becomes the detector's input; None passes numeric input (and series) as they are.
    name : str
        The model's name (the folder's name when loaded).
    version : str
        The model's version (creation time and weights checksum, written by :mod:`anomalia.bundle`).
    label_column : str, optional
        The label column of the fit (1 = anomaly), saved so that ``evaluate`` and ``report`` find it again.
    """

    detector: BaseDetector
    preprocess: Preprocess = None
    name: str = "model"
    version: str = ""
    path: Path | None = None
    label_column: str | None = None

    # ------------------------------------------------------------------ what it reads
    @property
    def input_kind(self) -> str:
        """``"table"``, ``"series"`` or ``"images"``: the modality the workflows dispatch on."""
        return self.detector.input_kind

    @property
    def encoder(self) -> TabularEncoder:
        """The table encoding (a pass-through of the fitted columns for a detector fitted on a DataFrame)."""
        if isinstance(self.preprocess, TabularEncoder):
            return self.preprocess
        columns = self.detector.schema_.columns
        if self.input_kind != "table" or not columns:
            raise BundleError(
                f"model {self.name!r} ({self.detector.name}, fitted on "
                f"{'an unnamed array' if not columns else self.input_kind}) has no table encoding, so it cannot "
                "read files; fit it with `anomalia fit`, or from a DataFrame with named columns"
            )
        return TabularEncoder.pass_through(columns)

    @property
    def input_columns(self) -> list[str]:
        """The columns a table must have (tables), the channels of a series, or the text column."""
        if self.input_kind == "series":
            return self.channels
        if self.input_kind == "text":
            return self.feature_names
        return self.encoder.input_columns

    @property
    def feature_names(self) -> list[str]:
        """The detector's features (after one-hot encoding), or the channels of a series."""
        if self.input_kind == "text":
            return [getattr(self.detector, "text_column", None) or "text"]
        if self.input_kind == "series":
            return self.channels
        return self.encoder.feature_names

    @property
    def channels(self) -> list[str]:
        columns = self.detector.schema_.columns
        return list(columns) if columns else [str(i) for i in range(self.detector.n_features_in_)]

    @property
    def image_reading(self) -> ImageReading:
        if isinstance(self.preprocess, ImageReading):
            return self.preprocess
        c, h, w = self.detector.image_shape_  # type: ignore[attr-defined]
        return ImageReading((h, w), "L" if c == 1 else "RGB")

    # ------------------------------------------------------------------ saving and loading
    def save(self, path: str | Path) -> Path:
        """Write the model folder: one manifest (detector, preprocessing, name) and the weights, atomically."""
        section, arrays = detector_section(self.detector)
        preprocess = None if self.preprocess is None else self.preprocess.to_dict()
        if isinstance(self.preprocess, TabularEncoder):
            preprocess = {"kind": "table", "encoder": preprocess}
        sections = {"name": self.name, "detector": section, "preprocess": preprocess}
        if self.label_column is not None:
            sections["label_column"] = self.label_column
        manifest = bundle.write(path, sections, arrays)
        self.path, self.version = Path(path), str(manifest["version"])
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Load a model folder written by ``anomalia fit``, :meth:`save` or ``detector.save``."""
        folder = Path(path)
        manifest, arrays = bundle.read(folder)
        section = manifest.get("detector")
        if not isinstance(section, dict):
            raise BundleError(f"{folder / bundle.MANIFEST} has no detector section; save the model again")
        detector = from_section(section, arrays, where=str(folder))
        model = cls(
            detector,
            _preprocess(manifest.get("preprocess"), folder),
            name=str(manifest.get("name") or folder.resolve().name),
            version=str(manifest.get("version", "")),
            path=folder,
            label_column=_label_column(manifest.get("label_column")),
        )
        if isinstance(model.preprocess, TabularEncoder):
            n_enc, n_det = len(model.preprocess.feature_names), detector.schema_.n_features
            if n_enc != n_det:
                raise BundleError(
                    f"the preprocessing in {folder} encodes {n_enc} features but its detector expects {n_det}; "
                    "the folder is damaged, fit again"
                )
        return model

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        data: Any,
        *,
        explain: str = "flagged",
        top_k: int = 3,
        row_offset: int = 0,
        maps: bool = False,
        encoded: bool = False,
    ) -> ScoredRows:
        """Score ``data``: records (pyarrow Table / RecordBatch, DataFrame or numeric array), a series
        (DataFrame with the time column or DatetimeIndex, or an array), or images (an array or image paths).

        Parameters
        ----------
        explain : {"flagged", "all", "none"}
            Which rows get their ``top_k`` contributing features (input columns, or channels); computed in
            the same pass as the scores for deep detectors.
        row_offset : int
            Number of the first row (batches of a file), for ``row`` and error messages.
        maps : bool
            Images: also return each image's anomaly map (``anomaly_map``).
        encoded : bool
            Tables: ``data`` is already :meth:`encode`'s output (a file's reader encodes in its own thread).
        """
        if explain not in EXPLAIN_OPTIONS:
            raise ParameterError(f"explain must be one of {list(EXPLAIN_OPTIONS)}; got {explain!r}")
        if self.input_kind == "images":
            return self._score_images(data, maps=maps)
        if self.input_kind == "text":  # texts (a list, array, Series or a frame's text column) and their spans
            text_detector: Any = self.detector
            return text_detector.scored_rows(
                data, explain=explain, top_k=top_k, row_offset=row_offset, name=self.name, version=self.version
            )
        if self.input_kind == "multimodal":  # records of parts: each part's share of the fused score
            multimodal: Any = self.detector
            return multimodal.scored_rows(data, name=self.name, version=self.version)
        if self.input_kind == "series":
            X, time, time_name = self._series_input(data)
            names, groups = self.channels, None
        elif encoded or not _is_numeric_array(data):
            X = data if encoded else self.encode(data, row_offset=row_offset)
            names, groups, time, time_name = self.encoder.input_columns, self.encoder.groups, None, "time"
        else:  # numbers given directly: the detector's own features
            X, names, groups, time, time_name = data, self._feature_names_or_positions(), None, None, "time"
        det = self.detector
        threshold = det.fitted_threshold()
        k = min(top_k, len(names))
        if explain == "none":
            scores = det.anomaly_score(X)
            flags = threshold.predict(scores)
            contributions = Contributions.none(scores.size, names, k)
        else:
            # tables: a few more candidates than k, which the counterfactual check re-ranks on flagged rows
            m = min(len(names), max(k, CANDIDATES)) if self.input_kind == "table" and k else k
            reduce = _top_shares(m, groups, len(names), getattr(det, "feature_scale_", None))
            above = threshold.threshold_ if explain == "flagged" else None
            scores, rows, top = det.score_parts(X, above=above, reduce=reduce)
            flags = threshold.predict(scores)
            if explain == "flagged":  # a streaming threshold may flag fewer than "score above its value"
                keep = flags[rows]
                rows, top = rows[keep], None if top is None else top[keep]
            if top is None:  # no decomposition: occlusion, one pass per feature over the explained rows
                top = apply_reduce(reduce, occlusion(det, np.asarray(X)[rows])) if rows.size else None
            elif self.input_kind == "table":
                top = self._repaired_ranking(np.asarray(X), rows, flags, scores, top, m, groups)
            if top is not None and m > k:
                top = np.concatenate([top[:, :k], top[:, m : m + k]], axis=1)
            if top is None or top.shape[0] == 0:
                contributions = Contributions.none(scores.size, names, k)
            else:
                found = Contributions(tuple(names), top[:, k:].astype(np.int32), top[:, :k].astype(np.float32))
                found = self._with_values(found, X, rows, groups)
                contributions = Contributions.scatter(scores.size, rows, found)
        return ScoredRows(
            score=scores,
            p_value=det.calibrator_.p_values(scores),
            is_anomaly=flags,
            row=np.arange(row_offset, row_offset + scores.size, dtype=np.int64),
            time=time,
            time_name=time_name,
            contributions=contributions,
            model_name=self.name,
            model_version=self.version,
        )

    def sample(self, n: int, *, random_state: Any = None) -> Any:
        """``n`` rows drawn from a generative detector (``vae``), as records of the input columns when the
        model has a table encoding (a pyarrow Table: one-hot groups become their likeliest category), else as
        the detector's float32 features."""
        sampler = getattr(self.detector, "sample", None)
        if sampler is None:
            raise InputError(
                f"detector {self.detector.name!r} does not generate data; fit a vae to draw normal-looking rows"
            )
        X = sampler(n, random_state=random_state)
        if isinstance(self.preprocess, TabularEncoder) or self.detector.schema_.columns:
            from .data.decode import decode_features

            return decode_features(self.encoder, X)
        return X

    def _repaired_ranking(
        self,
        X: np.ndarray,
        rows: np.ndarray,
        flags: np.ndarray,
        scores: np.ndarray,
        top: np.ndarray,
        m: int,
        groups: np.ndarray | None,
    ) -> np.ndarray:
        """``top`` (``[shares..., indices...]`` of ``m`` candidates per explained row) with the flagged rows'
        candidates re-ranked by how much repairing each lowers the score (:mod:`anomalia.explain.counterfactual`)."""
        flagged = np.flatnonzero(flags[rows])
        if flagged.size == 0 or m < 2:
            return top
        g = np.arange(X.shape[1]) if groups is None else np.asarray(groups)
        cand = top[flagged, m:].astype(np.int64)
        found = counterfactual_top(self.detector, X[rows[flagged]], cand, g, scores[rows[flagged]])
        if found is None:
            return top
        index, share = found
        out = top.copy()
        repaired = ~np.isnan(share).any(axis=1)
        out[flagged[repaired], :m] = share[repaired]
        out[flagged[repaired], m:] = index[repaired]
        return out

    def _with_values(self, found: Contributions, X: Any, rows: np.ndarray, groups: np.ndarray | None) -> Contributions:
        """``found`` (the top features of ``rows``) with the observed and expected values and normal ranges.

        A contribution names an input column; one that is a single numeric feature gets its values (a one-hot
        text column gets NaN: its observed and expected categories are in :func:`expected_category`)."""
        det = self.detector
        low, high = getattr(det, "feature_low_", None), getattr(det, "feature_high_", None)
        if low is None or high is None:
            return found
        if self.input_kind == "series":
            series = det._series(X)  # type: ignore[attr-defined]
            observed_all = series.to_rows(series.values)
            exp_all = det.expected(X)
            observed = observed_all[rows]
            expected = None if exp_all is None else exp_all[rows]
        else:
            observed = np.asarray(X, dtype=np.float64)[rows]
            expected = det.expected(np.asarray(X)[rows]) if rows.size else None
        n_features = observed.shape[1]
        feature = np.arange(n_features)
        width = np.ones(n_features, dtype=np.int64)
        if groups is not None and len(groups) != len(found.names):  # input column -> its first feature
            g = np.asarray(groups)
            feature = np.searchsorted(g, np.arange(len(found.names)))
            width = np.bincount(g, minlength=len(found.names))
        idx = found.index.astype(np.int64)
        f = feature[idx]
        single = width[idx] == 1
        r = np.arange(idx.shape[0])[:, None]
        nan = np.full(idx.shape, np.nan)
        obs = np.where(single, observed[r, f], nan)
        exp = nan if expected is None else np.where(single, expected[r, f], nan)
        return replace(
            found,
            observed=obs,
            expected=exp,
            normal_low=np.where(single, np.asarray(low)[f], nan),
            normal_high=np.where(single, np.asarray(high)[f], nan),
        )

    def encode(self, data: Any, *, row_offset: int = 0) -> np.ndarray:
        """Records (pyarrow Table / RecordBatch or DataFrame) as the detector's float32 features."""
        return self.encoder.transform(as_arrow(data), row_offset=row_offset)

    def _feature_names_or_positions(self) -> list[str]:
        if self.preprocess is not None or self.detector.schema_.columns:
            return self.feature_names
        return [f"x{i}" for i in range(self.detector.n_features_in_)]

    def _series_input(self, data: Any) -> tuple[Any, np.ndarray | None, str]:
        det = self.detector
        time_column = getattr(det, "time_column", None)
        if not (hasattr(data, "columns") and hasattr(data, "dtypes")):
            if hasattr(data, "schema") and hasattr(data, "num_rows"):  # pyarrow
                data = data.to_pandas()
            else:
                return data, None, "time"
        frame = data
        if det.schema_.columns:  # only the fitted channels (and the time column): others may be ids, labels
            missing = [c for c in self.channels if c not in frame.columns]
            if missing:
                raise InputError(f"the series lacks the channel column(s) {missing[:5]} the model was fitted on")
            frame = frame[[c for c in [time_column, *self.channels] if c is not None]]
        time = None
        if time_column is not None and time_column in frame.columns:
            time = np.asarray(frame[time_column])
        elif hasattr(frame.index, "tz_localize"):  # a DatetimeIndex
            time = np.asarray(frame.index)
        return frame, time, time_column or "time"

    def _score_images(self, data: Any, *, maps: bool) -> ScoredRows:
        paths = None
        listed = isinstance(data, Sequence) and not isinstance(data, str | bytes) and len(data) > 0
        if listed and isinstance(data[0], str | Path):
            paths = [str(p) for p in data]
            data = self.image_reading.read(paths)
        det = self.detector
        scores = det.anomaly_score(data)
        return ScoredRows(
            score=scores,
            p_value=det.calibrator_.p_values(scores),
            is_anomaly=det.decide(scores),
            row=None if paths is not None else np.arange(scores.size, dtype=np.int64),
            model_name=self.name,
            model_version=self.version,
            paths=paths,
            anomaly_map=det.anomaly_map(data) if maps else None,  # type: ignore[attr-defined]
        )


def _is_numeric_array(data: Any) -> bool:
    return isinstance(data, np.ndarray) and data.dtype.kind in "biuf"


def _top_shares(k: int, groups: np.ndarray | None, n_names: int, scale: np.ndarray | None = None) -> Any:
    """A ``reduce`` for :meth:`BaseDetector.score_parts`: each row's parts (summed per input column when
    one-hot groups are given) divided by their usual size on held-out normal rows (``scale``: the mean part
    per feature; None: as they are) -> shares of the row's total -> the ``k`` largest, as
    ``[shares..., indices...]``.

    Runs on each scoring batch in torch, so no table of every row's parts is ever built.
    """
    one_hot = groups is not None and len(groups) != n_names  # else every feature is its own column
    index = torch.from_numpy(np.asarray(groups, dtype=np.int64)) if one_hot else None
    usual = None
    if scale is not None:
        s = torch.from_numpy(np.asarray(scale, dtype=np.float64))
        if index is not None:  # a one-hot column is compared against its own usual part, as one group
            s = torch.zeros(n_names, dtype=s.dtype).index_add_(0, index, s)
        usual = s.clamp_min(torch.finfo(torch.float32).tiny).to(torch.float32)

    def reduce(parts: torch.Tensor) -> torch.Tensor:
        p = parts.clamp_min(0.0)
        if index is not None:
            p = torch.zeros(p.shape[0], n_names, dtype=p.dtype, device=p.device).index_add_(1, index.to(p.device), p)
        if usual is not None:
            p = p / usual.to(p.device, p.dtype)
        total = p.sum(dim=1, keepdim=True)
        shares = torch.where(total > 0, p / total.clamp_min(torch.finfo(p.dtype).tiny), 1.0 / p.shape[1])
        values, top = torch.topk(shares, k, dim=1)
        return torch.cat([values, top.to(values.dtype)], dim=1)

    return reduce


def _label_column(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _preprocess(section: Any, folder: Path) -> Preprocess:
    if section is None:
        return None
    try:
        kind = section.get("kind")
        if kind == "table":
            return TabularEncoder.from_dict(section["encoder"])
        if kind == "images":
            return ImageReading.from_dict(section)
    except (InputError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"the preprocessing in {folder / bundle.MANIFEST} is damaged ({exc}); fit again") from None
    raise BundleError(f"{folder / bundle.MANIFEST} names an unknown preprocessing {section!r}; fit again")


def fit(
    data: Any,
    model: str = "autoencoder",
    *,
    label_column: str | None = None,
    impute: str | None = None,
    max_categories: int = MAX_CATEGORIES,
    drop: Sequence[str] = (),
    name: str = "model",
    **params: Any,
) -> Model:
    """Fit detector ``model`` on a table of records and return the :class:`Model` (save it with ``.save``).

    ``data`` is a pandas DataFrame or pyarrow Table and may mix numbers, booleans and text: it is encoded as
    the command line encodes files (numbers as they are, text one-hot, see :class:`~anomalia.data.TabularEncoder`)
    and the encoding is part of the model, so ``Model.score`` reads raw records of the same kind.

    Parameters
    ----------
    model : str
        A table detector (``anomalia.detector_names()``); ``params`` are its arguments (``epochs=20``...).
    label_column : str, optional
        Column with 1 = anomaly, 0 = normal: labelled anomalies are kept out of training and, for a labelled
        threshold (``threshold="best-f1"``), fit it with the held-out normal rows.
    impute, max_categories, drop
        As ``anomalia fit``: ``impute="median"`` fills missing values; text columns with more distinct
        values than ``max_categories`` are an error; ``drop`` lists columns to ignore.
    """
    from .data import as_labels
    from .detectors import make_detector

    detector = make_detector(model, **params)
    if detector.input_kind != "table":
        raise InputError(
            f"anomalia.fit encodes tables of records; {model!r} reads {detector.input_kind}: fit it directly "
            f"({type(detector).__name__}(...).fit(X)) and wrap it as Model(detector)"
        )
    table = as_arrow(data)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    rule = detector.threshold_rule()
    labels = None
    if label_column is not None:
        if label_column not in table.column_names:
            columns = table.column_names[:10]
            raise InputError(f"the data has no label column {label_column!r}; its columns are {columns}")
        labels = as_labels(table.column(label_column), label_column)
    elif rule.needs_labels:
        raise InputError(f"threshold '{rule.spec}' is fitted on labelled anomalies; pass label_column=")
    missing = [c for c in drop if c not in table.column_names]
    if missing:
        raise InputError(f"drop names column(s) {missing} that the data does not have")
    exclude = [*drop, *([label_column] if label_column else [])]
    encoder = TabularEncoder(max_categories=max_categories, impute=impute, exclude=exclude)
    normal = table if labels is None else table.filter(pa.array(labels == 0))
    if normal.num_rows == 0:
        raise InputError(f"every row is labelled as an anomaly in {label_column!r}; fit needs normal rows")
    X = encoder.fit(normal).transform(normal)
    import pandas as pd

    detector.fit(pd.DataFrame(X, columns=encoder.feature_names, copy=False))
    if rule.needs_labels:
        assert labels is not None
        if not labels.any():
            raise InputError(f"threshold '{rule.spec}' needs labelled anomalies, but {label_column!r} marks none")
        anomalies = table.filter(pa.array(labels == 1))
        fit_labelled_threshold(detector, normal.num_rows, detector.anomaly_score(encoder.transform(anomalies)))
    return Model(detector, encoder, name=name, label_column=label_column)


def fit_labelled_threshold(detector: BaseDetector, n_normal: int, anomaly_scores: np.ndarray) -> None:
    """Fit the detector's labelled threshold rule on its held-out normal scores and labelled anomaly scores.

    The held-out normal rows were never trained on; each of their scores counts for the normal rows it
    stands for (``n_normal`` in all), so precision reflects the data's share of anomalies. A rule that finds
    fewer than :data:`LOW_RECALL` of the labelled anomalies is logged as a warning.
    """
    normal_scores = detector.calibration_scores_
    weight = max(1, round(n_normal / normal_scores.size))
    scores = np.r_[np.repeat(normal_scores, weight), anomaly_scores]
    y_val = np.r_[np.zeros(normal_scores.size * weight), np.ones(anomaly_scores.size)].astype(np.int64)
    detector.fit_threshold(y=y_val, scores=scores)
    info = detector.fitted_threshold().info_
    recall = info.get("recall")
    if recall is not None and recall < LOW_RECALL:
        log.warning(
            "threshold '%s' flags only %d of the labelled anomalies (%d, recall %.3f; precision %.3f) on the "
            "validation set: most anomalies would be missed. Lower the precision target, or use best-f1 or "
            "recall:R",
            detector.fitted_threshold().spec,
            round(recall * anomaly_scores.size),
            anomaly_scores.size,
            recall,
            info.get("precision", float("nan")),
        )


def load_model(path: str | Path) -> Model:
    """:meth:`Model.load`."""
    return Model.load(path)
