"""Records with several parts (numbers, an image, a text, ...): one detector per part, one p-value per record.

The normal records are split three ways: the parts' detectors train on the first share; on a second share,
each part's scores fit a transform to a common scale (the part's empirical tail, ``-log`` of the share of
those normal scores at least as high, continued linearly above the highest); the third share calibrates
the fused score once. The fusion is a fixed rule (``max`` by default, or ``sum``) of the scaled part scores,
so the fused scores of the calibration records and of a new normal record are exchangeable and the
conformal p-value keeps ``P(p <= alpha) <= alpha`` in finite samples whatever the dependence between the
parts. Combining per-part p-values with Fisher's or Stouffer's rule assumes independent parts and does not
(see :mod:`anomalia.scoring.combine`; Bonferroni there is the valid fallback).
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone

from .._core import InputError, InputTypeError, ParameterError, Schema, check_is_fitted, check_random_state
from .._core.params import Rule, instance_of, interval, options
from ..results import Contributions, ScoredRows
from ..scoring.combine import bonferroni
from .base import MAX_CALIBRATION_ROWS, BaseDetector, normalise_shares
from .persist import detector_section, from_section
from .registry import register

FUSIONS = ("max", "sum")
#: Part kinds a record can hold: one row, one text or one image per record.
PART_KINDS = ("table", "text", "images")


def _parts_rule() -> Rule:
    def check(v: Any) -> bool:
        return (
            isinstance(v, dict)
            and len(v) > 0
            and all(isinstance(k, str) and k and "." not in k for k in v)
            and all(isinstance(d, BaseDetector) for d in v.values())
        )

    return Rule(check, "a non-empty dict of part name (no dots) -> detector")


def _length(data: Any) -> int:
    if hasattr(data, "shape") and getattr(data, "shape", None):
        return int(data.shape[0])
    try:
        return len(data)
    except TypeError:
        kind = type(data).__name__
        raise InputTypeError(f"a part's data has no length ({kind}); pass arrays, lists or frames") from None


def _take(data: Any, idx: np.ndarray) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[idx]
    if isinstance(data, np.ndarray):
        return data[idx]
    return np.asarray(data, dtype=object)[idx] if data and isinstance(data[0], str) else np.asarray(data)[idx]


@register("multimodal")
class MultiModalDetector(BaseDetector):
    """One detector per part of a record and one calibrated p-value for the record (see the module docstring).

    Parameters
    ----------
    parts : dict of str -> detector
        The detector of each part (unfitted; each is cloned and fitted on its part), e.g.
        ``{"metrics": an.AutoEncoder(), "message": an.TextDetector()}``.
    fusion : {"max", "sum"}
        How the scaled part scores make one score: the largest (default: a record is as anomalous as its
        most anomalous part) or their sum (evidence spread over parts adds up).
    columns : dict of str -> column or list of columns, optional
        For DataFrame input: the column(s) of each part (a text part takes one column).
    scale_fraction : float
        Share of the normal records that fits the per-part scale (never the calibration records).
    threshold, calibration_fraction, random_state
        As for every detector: the decision rule on the fused p-value, the share of records held out to
        calibrate it, the seed (each part's detector gets its own seed drawn from it).

    ``fit`` / ``anomaly_score`` / ``p_value`` / ``is_anomaly`` take a dict part name -> data (arrays,
    lists of texts, image arrays, frames; one entry per record in each) or a DataFrame with ``columns``.
    Learned: ``parts_`` (the fitted part detectors), ``scale_`` (each part's sorted scale scores).
    """

    input_kind: ClassVar[str] = "multimodal"
    parameter_rules: ClassVar[dict[str, list[Rule]]] = {
        "parts": [_parts_rule()],
        "fusion": [options(*FUSIONS)],
        "columns": [instance_of(dict, text="a dict of part name -> column(s)"), options(None)],
        "scale_fraction": [interval(0.0, 0.9, closed="neither")],
    }

    parts: dict[str, BaseDetector] | None = None
    fusion: str = "max"
    _: KW_ONLY
    columns: dict[str, Any] | None = None
    scale_fraction: float = 0.2

    # ------------------------------------------------------------------ input
    def _names(self) -> list[str]:
        return list(getattr(self, "parts_", None) or self.parts or {})

    def _validate(self, X: Any, *, fitting: bool, finite: bool = True) -> tuple[dict[str, Any], Schema]:
        names = self._names()
        if X is None:
            raise InputTypeError(f"X is None; pass a dict of part name -> data for the parts {names}")
        if hasattr(X, "columns") and hasattr(X, "iloc"):
            if not self.columns:
                raise InputError(
                    "X is a DataFrame: say which columns make each part with columns={'part': ['col', ...], ...}"
                )
            data = {}
            for name in names:
                cols = self.columns.get(name)
                if cols is None:
                    raise InputError(f"columns has no entry for the part {name!r}; it needs one per part {names}")
                cols = [cols] if isinstance(cols, str) else list(cols)
                missing = [c for c in cols if c not in X.columns]
                if missing:
                    have = list(X.columns)[:10]
                    raise InputError(f"X has no column(s) {missing} (part {name!r}); its columns are {have}")
                data[name] = X[cols]
        elif isinstance(X, dict):
            missing, extra = [n for n in names if n not in X], [k for k in X if k not in names]
            if missing or extra:
                raise InputError(f"X must hold exactly the parts {names}; missing {missing}, unexpected {extra}")
            data = {n: X[n] for n in names}
        else:
            raise InputTypeError(
                f"X must be a dict of part name -> data (parts {names}) or a DataFrame with columns=...; "
                f"got {type(X).__name__}"
            )
        lengths = {n: _length(d) for n, d in data.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"every part needs one entry per record; the parts have {lengths} entries")
        if next(iter(lengths.values())) == 0:
            raise InputError("X is empty; it needs at least one record")
        return data, Schema(len(names), tuple(names), ("part",) * len(names))

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, *, callback: Any = None) -> MultiModalDetector:
        """Fit each part's detector, the per-part scales and the one calibration (see the module docstring)."""
        self._check_params()
        assert self.parts is not None
        for name, det in self.parts.items():
            if det.input_kind not in PART_KINDS:
                raise ParameterError(
                    f"part {name!r} is a {det.name} detector of {det.input_kind}; a part holds one row, one text or "
                    "one image per record (for a series, make each record's window a row of a table part)"
                )
        data, schema = self._validate(X, fitting=True)
        n = _length(next(iter(data.values())))
        rng = check_random_state(self.random_state)
        self._start_fit(schema, rng)
        n_cal = min(round(self.calibration_fraction * n), MAX_CALIBRATION_ROWS)
        n_scale = round(self.scale_fraction * n)
        if n - n_cal - n_scale < 4 or n_cal < 1 or n_scale < 1:
            raise InputError(
                f"X has {n} records; the parts' training, their scale and the calibration each need their own "
                "normal records: pass at least about 20 (for a false-alarm rate alpha, 1/alpha to calibrate)"
            )
        perm = rng.permutation(n)
        cal, scale = np.sort(perm[:n_cal]), np.sort(perm[n_cal : n_cal + n_scale])
        train = np.sort(perm[n_cal + n_scale :])
        self.parts_ = {}
        for name, det in self.parts.items():
            part = clone(det).set_params(random_state=int(rng.integers(2**31 - 1)))
            self.parts_[name] = part.fit(_take(data[name], train))
        self.scale_ = {n: np.sort(self.parts_[n].anomaly_score(_take(data[n], scale))) for n in self.parts_}
        self.n_train_rows_ = int(train.size)
        self._calibrate(self._score({name: _take(d, cal) for name, d in data.items()}))
        return self

    def partial_fit(self, X: Any, y: Any = None, *, callback: Any = None) -> MultiModalDetector:
        """Not offered: refitting the parts would change their scales; fit again on the old and new records."""
        raise NotImplementedError("MultiModalDetector does not learn incrementally; fit it again on all normal records")

    # ------------------------------------------------------------------ scoring
    def _scaled(self, name: str, scores: np.ndarray) -> np.ndarray:
        """``-log`` of the share of the part's scale scores at least as high (1 + count over m + 1), continued
        linearly above the highest scale score (one unit per ``highest - median``)."""
        ref = self.scale_[name]
        m = ref.size
        tail = (1.0 + m - np.searchsorted(ref, scores, side="left")) / (m + 1.0)
        out = -np.log(tail)
        top, spread = ref[-1], max(float(ref[-1] - np.median(ref)), 1e-12)
        above = scores > top
        out[above] += (scores[above] - top) / spread
        return out

    def _part_scores(self, data: dict[str, Any]) -> dict[str, np.ndarray]:
        return {name: self._scaled(name, det.anomaly_score(data[name])) for name, det in self.parts_.items()}

    def _fuse(self, scaled: dict[str, np.ndarray]) -> np.ndarray:
        stacked = np.stack(list(scaled.values()), axis=1)
        return stacked.max(axis=1) if self.fusion == "max" else stacked.sum(axis=1)

    def _score(self, X: dict[str, Any]) -> np.ndarray:
        return self._fuse(self._part_scores(X))

    def part_scores(self, X: Any) -> dict[str, np.ndarray]:
        """Each part's score on the common scale (``-log`` of its normal tail share), the inputs of the fusion."""
        check_is_fitted(self)
        return self._part_scores(self._validate(X, fitting=False)[0])

    def part_p_values(self, X: Any) -> dict[str, np.ndarray]:
        """Each part's own conformal p-value (from its detector's calibration); for reference and Bonferroni."""
        check_is_fitted(self)
        data = self._validate(X, fitting=False)[0]
        return {name: det.p_value(data[name]) for name, det in self.parts_.items()}

    def bonferroni_p_value(self, X: Any) -> np.ndarray:
        """``min(1, k * min_j p_j)`` of the parts' own p-values: valid under any dependence, less powerful."""
        return bonferroni(np.stack(list(self.part_p_values(X).values()), axis=1))

    # ------------------------------------------------------------------ explanations
    def explain(self, X: Any, *, top_k: int = 3) -> list[dict[str, Any]]:
        """Per record: the part that drove the fused score (``part``), every part's scaled score
        (``part_scores``) and the ``top_k`` features / pixels / words inside the driving part (``top``, as
        ``(name, share)`` pairs of that part's own explanation)."""
        check_is_fitted(self)
        data = self._validate(X, fitting=False)[0]
        scaled = self._part_scores(data)
        names = list(scaled)
        driver = np.argmax(np.stack([scaled[n] for n in names], axis=1), axis=1)
        out: list[dict[str, Any]] = [{} for _ in range(driver.size)]
        for j, name in enumerate(names):
            rows = np.flatnonzero(driver == j)
            if rows.size == 0:
                continue
            inside = self._inside(name, _take(data[name], rows), top_k)
            for r, top in zip(rows, inside, strict=True):
                out[r] = {"part": name, "part_scores": {n: float(scaled[n][r]) for n in names}, "top": top}
        return out

    def _inside(self, name: str, data: Any, top_k: int) -> list[list[tuple[str, float]]]:
        det = self.parts_[name]
        if det.input_kind == "text":
            return det.explain(data, top_k=top_k)  # type: ignore[call-arg]
        try:
            shares = np.asarray(det.explain(data))
        except NotImplementedError:  # no decomposition: the part is named, anomalia.explain.occlusion goes further
            return [[] for _ in range(_length(data))]
        shares = shares.reshape(shares.shape[0], -1)
        if det.input_kind == "images":
            shape = det.image_shape_  # type: ignore[attr-defined]
            c, h, w = shape
            label = [f"pixel (c={k // (h * w)}, y={k // w % h}, x={k % w})" for k in range(c * h * w)]
        else:
            cols = det.schema_.columns
            label = list(cols) if cols else [f"x{i}" for i in range(shares.shape[1])]
        top = np.argsort(-shares, axis=1, kind="stable")[:, :top_k]
        return [[(label[i], float(row[i])) for i in idx] for row, idx in zip(shares, top, strict=True)]

    def scored_rows(self, X: Any, *, name: str = "", version: str = "") -> ScoredRows:
        """Scores, p-values and decisions of records, each with its parts' shares of the fused score."""
        check_is_fitted(self)
        data = self._validate(X, fitting=False)[0]
        scaled = self._part_scores(data)
        scores = self._fuse(scaled)
        names = list(scaled)
        shares = normalise_shares(np.stack([scaled[n] for n in names], axis=1))
        order = np.argsort(-shares, axis=1, kind="stable")
        contributions = Contributions(
            tuple(names), order.astype(np.int32), np.take_along_axis(shares, order, axis=1).astype(np.float32)
        )
        return ScoredRows(
            score=scores,
            p_value=self.calibrator_.p_values(scores),
            is_anomaly=self.fitted_threshold().predict(scores),
            row=np.arange(scores.size, dtype=np.int64),
            contributions=contributions,
            model_name=name,
            model_version=version,
        )

    # ------------------------------------------------------------------ state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {
            "schema": self.schema_.to_dict(),
            "training": {"seed": self.seed_, "n_train_rows": self.n_train_rows_, "n_updates": self.n_updates_},
            "calibration": self.calibrator_.to_dict(),
            "threshold": None if self.threshold_ is None else self.threshold_.to_dict(),
            "state": {"parts": {}},
        }
        arrays: dict[str, np.ndarray] = {}
        for name, det in self.parts_.items():
            section, part_arrays = detector_section(det)
            meta["state"]["parts"][name] = section
            arrays.update({f"part.{name}.{k}": v for k, v in part_arrays.items()})
            arrays[f"scale.{name}"] = self.scale_[name]
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        self.parts_, self.scale_ = {}, {}
        for name, section in meta["state"]["parts"].items():
            prefix = f"part.{name}."
            own = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            self.parts_[name] = from_section(section, own, where=f"part {name!r}")
            self.scale_[name] = np.asarray(arrays[f"scale.{name}"], dtype=np.float64)
        self.parts = {name: clone(det) for name, det in self.parts_.items()}
