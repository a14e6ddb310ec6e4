"""The records every score path produces: what the command line writes, the service answers, the stream
runner and the response engine consume, and the report draws. numpy and pyarrow only.

- :class:`ScoredRows`: per row (or time step, or image) its id, score, conformal p-value, decision and top
  contributing features, with the model's name and version;
- :class:`Evaluation`: everything an evaluation measured, with typed views for series
  (:class:`SeriesView`) and images (:class:`ImagesView`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Contributions:
    """The top ``k`` contributing features of each row: indices into ``names`` and their shares.

    A feature's share is its part of the row's score divided by that feature's usual part on held-out normal
    rows, normalised over the row's features: what is unusual *for that feature* (an input column's one-hot
    features are compared as one group against the group's own usual part). Models saved before 0.2 have no
    usual parts: their shares are plain shares of the score. On the flagged rows of a table the top columns
    are re-ranked by how much repairing each lowers the score, and a share is the column's part of those
    score drops (:mod:`anomalia.explain.counterfactual`).

    ``observed`` / ``expected`` (the value the row has and the value the model expected: a reconstruction or
    a forecast, in the input's units) and ``normal_low`` / ``normal_high`` (the feature's range on held-out
    normal rows) are (n, k) floats, NaN where they do not apply (a one-hot text column, a detector that
    predicts no values, an unexplained row); None when not computed. Rows that were not explained hold
    index -1 and share NaN.
    """

    names: tuple[str, ...]
    index: np.ndarray  # (n, k) int32
    share: np.ndarray  # (n, k) float32
    observed: np.ndarray | None = None  # (n, k) float64
    expected: np.ndarray | None = None
    normal_low: np.ndarray | None = None
    normal_high: np.ndarray | None = None

    #: The value fields, in output order (columns ``top_<field>_i``).
    VALUE_FIELDS = ("observed", "expected", "normal_low", "normal_high")

    @property
    def k(self) -> int:
        return int(self.index.shape[1])

    @property
    def has_values(self) -> bool:
        return self.observed is not None

    def of(self, i: int) -> list[tuple[str, float]]:
        """(feature, share) pairs of row ``i``, largest first; empty when the row was not explained."""
        return [(self.names[j], float(s)) for j, s in zip(self.index[i], self.share[i], strict=True) if j >= 0]

    def values_of(self, i: int) -> list[dict[str, float | None]]:
        """Row ``i``'s ``observed``, ``expected``, ``normal_low``, ``normal_high`` per explained feature
        (None where not known), in the order of :meth:`of`."""
        out = []
        for pos, j in enumerate(self.index[i]):
            if j < 0:
                continue
            rec: dict[str, float | None] = {}
            for name in self.VALUE_FIELDS:
                arr = getattr(self, name)
                v = None if arr is None else float(arr[i, pos])
                rec[name] = None if v is None or v != v else v
            out.append(rec)
        return out

    def take(self, rows: np.ndarray | slice) -> Contributions:
        values = {f: None if getattr(self, f) is None else getattr(self, f)[rows] for f in self.VALUE_FIELDS}
        return Contributions(self.names, self.index[rows], self.share[rows], **values)

    @staticmethod
    def none(n: int, names: Sequence[str], k: int) -> Contributions:
        """``n`` rows, none of them explained (the ``k`` columns are there, empty)."""
        return Contributions(tuple(names), np.full((n, k), -1, dtype=np.int32), np.full((n, k), np.nan, np.float32))

    @staticmethod
    def scatter(n: int, rows: np.ndarray, top: Contributions) -> Contributions:
        """``top`` (of ``rows``) placed in a table of ``n`` rows; the other rows unexplained."""
        out = Contributions.none(n, top.names, top.k)
        out.index[rows], out.share[rows] = top.index, top.share
        if not top.has_values:
            return out
        values = {}
        for f in Contributions.VALUE_FIELDS:
            arr = np.full((n, top.k), np.nan)
            arr[rows] = getattr(top, f)
            values[f] = arr
        return replace(out, **values)

    @staticmethod
    def concat(parts: Sequence[Contributions]) -> Contributions:
        """The rows of several, in order (same names)."""
        first = parts[0]
        values = {}
        if all(p.has_values for p in parts):
            values = {f: np.concatenate([getattr(p, f) for p in parts]) for f in Contributions.VALUE_FIELDS}
        return Contributions(
            first.names,
            np.concatenate([p.index for p in parts]),
            np.concatenate([p.share for p in parts]),
            **values,
        )


@dataclass
class ScoredRows:
    """Scores of a batch of rows (records, time steps or images), in input order.

    ``row`` numbers the rows in their source (a file's 0-based row; None for images, named by ``paths``);
    ``time`` holds timestamps of series steps (named ``time_name`` in outputs); ``columns`` are input
    columns passed through (kept ids, labels); ``anomaly_map`` holds per-pixel maps of images when asked for.
    """

    score: np.ndarray
    p_value: np.ndarray
    is_anomaly: np.ndarray
    row: np.ndarray | None = None
    time: np.ndarray | None = None
    time_name: str = "time"
    contributions: Contributions | None = None
    model_name: str = ""
    model_version: str = ""
    paths: list[str] | None = None
    anomaly_map: np.ndarray | None = None
    columns: dict[str, pa.Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.score.size)

    @property
    def n_flagged(self) -> int:
        return int(self.is_anomaly.sum())

    def with_columns(self, columns: dict[str, pa.Array]) -> ScoredRows:
        """A copy that also passes ``columns`` through (same length as the rows)."""
        return replace(self, columns={**self.columns, **columns})

    def to_arrow(self, top_k: int | None = None) -> pa.Table:
        """The output table: ``row`` (or ``path``), the time and passed-through columns, ``score``,
        ``p_value``, ``is_anomaly`` and ``top_feature_i`` / ``top_share_i`` (dictionary-encoded names)."""
        n = len(self)
        cols: dict[str, pa.Array] = {}
        if self.paths is not None:
            cols["path"] = pa.array(self.paths, pa.string())
        if self.row is not None:
            cols["row"] = pa.array(self.row, pa.int64())
        if self.time is not None:
            cols[self.time_name] = pa.array(self.time)
        cols.update(self.columns)
        cols["score"] = pa.array(self.score)
        cols["p_value"] = pa.array(self.p_value)
        cols["is_anomaly"] = pa.array(self.is_anomaly)
        c = self.contributions
        if c is not None:
            names = pa.array(list(c.names), pa.string())
            for i in range(c.k if top_k is None else min(top_k, c.k)):
                miss = c.index[:, i] < 0
                idx = pa.array(c.index[:, i], mask=miss) if miss.any() else pa.array(c.index[:, i])
                share = pa.array(c.share[:, i], mask=miss) if miss.any() else pa.array(c.share[:, i])
                cols[f"top_feature_{i + 1}"] = pa.DictionaryArray.from_arrays(idx, names)
                cols[f"top_share_{i + 1}"] = share
                for f in Contributions.VALUE_FIELDS:  # always there (null when not known): one schema per file
                    v = getattr(c, f)[:, i] if c.has_values else np.full(n, np.nan)
                    cols[f"top_{f}_{i + 1}"] = pa.array(v, type=pa.float64(), mask=np.isnan(v))
        assert all(len(v) == n for v in cols.values()), "every output column has one value per row"
        return pa.table(cols)

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per row (JSON-able): score, p_value, is_anomaly, row / path / time, contributions."""
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "score": float(self.score[i]),
                "p_value": float(self.p_value[i]),
                "is_anomaly": bool(self.is_anomaly[i]),
            }
            if self.row is not None:
                rec["row"] = int(self.row[i])
            if self.paths is not None:
                rec["path"] = self.paths[i]
            if self.time is not None:
                rec[self.time_name] = str(self.time[i])
            if self.contributions is not None:
                c = self.contributions
                rec["contributions"] = [{"feature": f, "share": s} for f, s in c.of(i)]
                if c.has_values:
                    for entry, values in zip(rec["contributions"], c.values_of(i), strict=True):
                        entry.update(values)
            out.append(rec)
        return out

    @staticmethod
    def concat(parts: Sequence[ScoredRows]) -> ScoredRows:
        """One :class:`ScoredRows` of several, in order (same model and columns)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]

        def cat(name: str) -> Any:
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else np.concatenate(values)

        contributions = None
        if first.contributions is not None:
            contributions = Contributions.concat([p.contributions for p in parts if p.contributions is not None])
        return ScoredRows(
            score=cat("score"),
            p_value=cat("p_value"),
            is_anomaly=cat("is_anomaly"),
            row=cat("row"),
            time=cat("time"),
            time_name=first.time_name,
            contributions=contributions,
            model_name=first.model_name,
            model_version=first.model_version,
            paths=None if first.paths is None else [x for p in parts for x in (p.paths or [])],
            anomaly_map=cat("anomaly_map"),
            columns={k: pa.concat_arrays([p.columns[k] for p in parts]) for k in first.columns},
        )


# ------------------------------------------------------------------------------------------------ evaluations
@dataclass
class Contribution:
    """One feature's part in a row's score: its share (relative to the feature's usual error, see
    :class:`Contributions`), the value the row has (``value``, as read), and, where known, the value
    observed and expected by the model (a reconstruction or forecast, in the input's units; for a one-hot
    text column the category it expected) and the feature's normal range on held-out normal rows."""

    feature: str
    share: float
    value: Any
    observed: Any = None
    expected: Any = None
    normal_low: float | None = None
    normal_high: float | None = None


@dataclass
class TopRow:
    """One of the highest-scored rows: where it is, its score and decision, and why."""

    row: int
    score: float
    p_value: float
    flagged: bool
    label: int | None
    contributions: list[Contribution]
    #: The step's timestamp (series with a time axis), shown instead of the row number.
    time: str | None = None


@dataclass
class OperatingPoint:
    """A threshold and what it gives on the evaluated data (precision etc. are None without labels)."""

    name: str
    threshold: float
    flagged: int
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    note: str = ""


@dataclass
class SeriesView:
    """What the report's series view draws: the values, the scores with the threshold, labels and flags."""

    time: np.ndarray | None
    values: np.ndarray
    channels: list[str]
    scores: np.ndarray
    threshold: float | None
    flags: np.ndarray
    labels: np.ndarray | None
    shares: np.ndarray
    warmup: int
    note: str = ""


@dataclass
class ImageView:
    """One image of the report: where it is, its score and label, and its heatmap overlay (PNG data URI)."""

    path: str
    kind: str
    score: float
    label: int | None
    flagged: bool
    overlay: str
    p_value: float | None = None


@dataclass
class ImagesView:
    """The report's image view: the top images with their heatmaps and the mean score per kind of image."""

    top: list[ImageView]
    mean_score_by_kind: dict[str, float]
    normal_kind: str = "good"


@dataclass
class Evaluation:
    """Everything an evaluation measured; the input of :func:`anomalia.report.build_report`."""

    title: str
    data: str
    detector: str
    params: dict[str, Any]
    threshold: str
    threshold_value: float
    scores: np.ndarray
    flags: np.ndarray
    labels: np.ndarray | None
    calibration_scores: np.ndarray
    metrics: dict[str, float]
    operating_points: list[OperatingPoint]
    top_rows: list[TopRow]
    history: list[dict[str, Any]]
    feature_names: list[str]
    seconds: float = 0.0
    target_precision: float = 0.9
    target_recall: float = 0.9
    #: Other detectors' scores on the same rows, drawn beside this one's curves (the demo compares four).
    comparison: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per-detector metric rows for a comparison table.
    comparison_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    series: SeriesView | None = None
    images: ImagesView | None = None
    #: Views of later features that have no typed field yet: name -> what their report section reads.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and 0 < int(self.labels.sum()) < self.labels.size
