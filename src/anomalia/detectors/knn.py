"""Nearest-neighbour distance: a row is as anomalous as it is far from the normal rows it is closest to."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core.params import interval, options
from .base import BaseDetector
from .registry import register
from .scaling import Standardizer

#: Rows of the query scored against the whole reference set at once (bounds the distance matrix's memory).
_CHUNK = 1024


def knn_distances(reference: np.ndarray, queries: np.ndarray, k: int, *, skip_self: bool = False) -> np.ndarray:
    """Sorted Euclidean distances of each query row to its ``k`` nearest reference rows, shape (n, k).

    ``skip_self`` drops each query's nearest match (the query itself, when the queries are the reference).
    """
    ref = reference.astype(np.float64)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    kk = k + int(skip_self)
    out = np.empty((queries.shape[0], k))
    for s in range(0, queries.shape[0], _CHUNK):
        q = queries[s : s + _CHUNK].astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf input: anomaly_score raises on the scores
            d2 = np.einsum("ij,ij->i", q, q)[:, None] + ref_sq[None, :] - 2.0 * (q @ ref.T)
        np.maximum(d2, 0.0, out=d2)
        near = np.partition(d2, kk - 1, axis=1)[:, :kk] if kk < d2.shape[1] else d2
        near = np.sort(near, axis=1)[:, int(skip_self) : kk]
        out[s : s + _CHUNK] = np.sqrt(near)
    return out


@register("knn")
class KNN(BaseDetector):
    """k-nearest-neighbour distance (Ramaswamy et al. 2000), on standardised records by default; a baseline and an
    :class:`~anomalia.Ensemble` member.

    Parameters
    ----------
    n_neighbors : int
        How many nearest normal rows a score looks at (default 5; fewer when the reference set is smaller).
    method : {"largest", "mean"}
        Score = the distance to the ``n_neighbors``-th nearest row (default, as PyOD's KNN) or the mean
        distance to the ``n_neighbors`` nearest.
    max_reference : int
        Training rows kept as the reference set at most (a seeded sample beyond it), which bounds memory and
        scoring time (each scored row is compared with every reference row).
    scaling : {"standard", "none"}
        Distances between standardised features (default: every feature counts alike, whatever its units)
        or between the raw values (as PyOD's KNN; a feature with a wide range dominates). The default
        ``Ensemble`` for contaminated data uses ``"none"``: a view of the data its other members, all on
        standardised features, do not have (benchmarks/RESULTS.md, "Tabular recipes").

    The reference set *is* the model: unlike the other detectors, a saved kNN model holds up to
    ``max_reference`` standardised training rows (``reference_``) in its weights file.
    """

    parameter_rules = {
        "n_neighbors": [interval(1, None, integer=True)],
        "method": [options("largest", "mean")],
        "max_reference": [interval(2, None, integer=True)],
        "scaling": [options("standard", "none")],
    }
    nonfinite_propagates = True
    test_params = {"n_neighbors": 3}

    n_neighbors: int = 5
    method: str = "largest"
    max_reference: int = 20_000
    scaling: str = "standard"

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        if self.scaling == "none":
            d = X.shape[1]
            self.scaler_ = Standardizer(np.zeros(d, np.float32), np.ones(d, np.float32))
        else:
            self.scaler_ = Standardizer.fit(X)
        rows = X if X.shape[0] <= self.max_reference else X[np.sort(rng.choice(X.shape[0], self.max_reference, False))]
        self.reference_ = self.scaler_.transform(rows).astype(np.float32)

    def _k(self) -> int:
        return max(1, min(self.n_neighbors, self.reference_.shape[0]))

    def _reduce(self, dist: np.ndarray) -> np.ndarray:
        return dist[:, -1] if self.method == "largest" else dist.mean(axis=1)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._reduce(knn_distances(self.reference_, self.scaler_.transform(X), self._k()))

    def training_scores(self) -> np.ndarray:
        """Leave-one-out scores of the reference rows (each row's own match left out)."""
        k = max(1, min(self.n_neighbors, self.reference_.shape[0] - 1))
        return self._reduce(knn_distances(self.reference_, self.reference_, k, skip_self=True))

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        """Squared per-feature differences to the mean of the ``n_neighbors`` nearest reference rows."""
        Z = self.scaler_.transform(X).astype(np.float64)
        ref = self.reference_.astype(np.float64)
        k = self._k()
        out = np.empty_like(Z)
        for s in range(0, Z.shape[0], _CHUNK):
            q = Z[s : s + _CHUNK]
            d2 = (q * q).sum(1)[:, None] + (ref * ref).sum(1)[None, :] - 2.0 * (q @ ref.T)
            idx = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < ref.shape[0] else np.tile(np.arange(k), (len(q), 1))
            out[s : s + _CHUNK] = (q - ref[idx].mean(axis=1)) ** 2
        return out

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"]["scaler"] = self.scaler_.to_dict()
        return meta, {**arrays, "reference": self.reference_}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        self.scaler_ = Standardizer.from_dict(meta["state"]["scaler"])
        self.reference_ = arrays["reference"]
