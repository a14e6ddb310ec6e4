"""An ensemble of detectors: member scores on a common scale, fused, and calibrated once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._core import ParameterError, child_seed
from .._core.params import Rule, options
from .base import BaseDetector
from .persist import detector_section, from_section, load_params
from .registry import make_detector, register

#: The members of ``Ensemble()`` on tables of normal rows: the autoencoder and kNN. With ``contamination`` set
#: (training data that may hold anomalies): autoencoder, VAE, isolation forest and kNN on unscaled features.
#: Both sets were chosen on development datasets only (benchmarks/RESULTS.md, "Tabular recipes").
DEFAULT_TABLE_MEMBERS: tuple[Any, ...] = ("autoencoder", "knn")
DEFAULT_CONTAMINATED_MEMBERS: tuple[Any, ...] = (
    "autoencoder",
    "vae",
    "isolation-forest",
    {"name": "knn", "params": {"scaling": "none"}},
)


def _is_member_spec(value: object) -> bool:
    if isinstance(value, str | BaseDetector):
        return True
    return isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("params", {}), dict)


def _members_rule(value: object) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(_is_member_spec(v) for v in value)


def member_from_spec(spec: str | dict[str, Any] | BaseDetector) -> BaseDetector:
    """A fresh, unfitted detector from a member spec: a name, ``{"name", "params"}`` or a detector."""
    if isinstance(spec, BaseDetector):
        from sklearn.base import clone

        return clone(spec)
    if isinstance(spec, str):
        return make_detector(spec)
    return make_detector(spec["name"], **load_params(spec.get("params", {})))


@register("ensemble")
class Ensemble(BaseDetector):
    """Several detectors as one: each member's score is put on a common scale, the scaled scores are
    fused, and the fused score is calibrated once on the ensemble's own held-out rows.

    How it fits: the ensemble holds out ``calibration_fraction`` of the normal rows (its calibration set)
    and fits every member on the rest. Each member holds out part of those training rows for its own
    calibration; the member's scores on them (training normals it did not learn from, never the ensemble's
    calibration set) give its scale: ``(score - median) / IQR``. The fused score is the mean (or the
    maximum) of the scaled member scores. Because the ensemble's calibration rows took no part in training
    or scaling, its conformal p-values and the ``false-alarm:alpha`` threshold keep their guarantee.

    Parameters
    ----------
    members : sequence, optional
        The members: registered names (``"knn"``), ``{"name": ..., "params": {...}}`` dicts, or unfitted
        detectors. None (default) means autoencoder + kNN, or, with ``contamination`` set, autoencoder + VAE
        + isolation forest + kNN on unscaled features (``scaling="none"``). Every member
        must read tables. A member without its own ``random_state`` gets one drawn from the ensemble's, and
        one without ``contamination`` gets the ensemble's.
    fusion : {"mean", "max"}
        How the scaled member scores are combined.

    Learned attributes: ``members_`` (the fitted members) and ``scales_`` (per member: median, IQR).
    Saved in one model folder: each member's manifest section inside the ensemble's, its arrays in the one
    weights file under ``member<i>.``.
    """

    parameter_rules = {
        "members": [
            Rule(_members_rule, "a non-empty list of detector names, {'name', 'params'} dicts or detectors"),
            options(None),
        ],
        "fusion": [options("mean", "max")],
    }
    test_params = {
        "members": (
            {"name": "autoencoder", "params": {"hidden": (8, 4), "epochs": 3, "batch_size": 64}},
            {"name": "isolation-forest", "params": {"n_estimators": 10}},
            "knn",
        ),
    }

    members: Sequence[Any] | None = None
    fusion: str = "mean"

    def _member_specs(self) -> Sequence[Any]:
        if self.members is not None:
            return self.members
        return DEFAULT_TABLE_MEMBERS if self.contamination is None else DEFAULT_CONTAMINATED_MEMBERS

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        members = []
        for spec in self._member_specs():
            det = member_from_spec(spec)
            if det.input_kind != "table":
                raise ParameterError(
                    f"Ensemble members must read tables; {det.name!r} reads {det.input_kind} (use a table detector)"
                )
            if det.random_state is None:
                det.set_params(random_state=child_seed(rng))
            if det.contamination is None and self.contamination is not None:
                det.set_params(contamination=self.contamination)
            members.append(det.fit(X, callback=callback))
        self.members_ = members
        self._fit_scales()

    def _fit_scales(self) -> None:
        scales = []
        for det in self.members_:
            s = det.calibrator_.scores
            med = float(np.median(s))
            iqr = float(np.subtract(*np.percentile(s, [75, 25])))
            spread = iqr if iqr > 0 else float(np.std(s))
            scales.append((med, spread if spread > 0 else 1.0))
        self.scales_ = np.asarray(scales, dtype=np.float64)

    def _update(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        for det in self.members_:
            det.partial_fit(X, callback=callback)
        self._fit_scales()

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        """Scaled score of every member, shape (n_rows, n_members), on checked input."""
        raw = np.column_stack([det._score(X) for det in self.members_])
        return (raw - self.scales_[:, 0]) / self.scales_[:, 1]

    def _score(self, X: np.ndarray) -> np.ndarray:
        scaled = self.member_scores(X)
        return scaled.max(axis=1) if self.fusion == "max" else scaled.mean(axis=1)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        sections = []
        for i, det in enumerate(self.members_):
            section, member_arrays = detector_section(det)
            sections.append(section)
            arrays.update({f"member{i}.{k}": v for k, v in member_arrays.items()})
        effective = {"members": [det.name for det in self.members_]}  # what `anomalia info` shows
        meta["state"].update(members=sections, scales=self.scales_.tolist(), effective=effective)
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        members = []
        for i, section in enumerate(meta["state"]["members"]):
            prefix = f"member{i}."
            own = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            members.append(from_section(section, own, where=f"member {i} of the ensemble"))
        self.members_ = members
        self.scales_ = np.asarray(meta["state"]["scales"], dtype=np.float64)
