"""PCA baseline: the score is the reconstruction error from the principal subspace of normal data."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import child_seed
from .._core.params import interval, options
from .base import BaseDetector
from .registry import register
from .scaling import Standardizer


@register("pca")
class PCA(BaseDetector):
    """Principal-component reconstruction error of standardised records (a linear autoencoder).

    Parameters
    ----------
    n_components : int, float or None
        As in :class:`sklearn.decomposition.PCA`: a count, or the share of variance to keep
        (default 0.9), or None for all (then every score is 0: do not).
    """

    parameter_rules = {
        "n_components": [interval(1, None, integer=True), interval(0.0, 1.0, closed="neither"), options(None)],
    }
    nonfinite_propagates = True

    n_components: int | float | None = 0.9

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        from sklearn.decomposition import PCA as _SkPCA  # on first use: it slows start-up

        self.scaler_ = Standardizer.fit(X)
        Z = self.scaler_.transform(X).astype(np.float64)
        n_comp = self.n_components
        if isinstance(n_comp, int):
            n_comp = min(n_comp, min(Z.shape) - 1) or 1
        pca = _SkPCA(n_components=n_comp, svd_solver="full", random_state=child_seed(rng)).fit(Z)
        self.components_ = pca.components_.astype(np.float64)
        self.center_ = pca.mean_.astype(np.float64)

    def _residual(self, X: np.ndarray) -> np.ndarray:
        Z = self.scaler_.transform(X).astype(np.float64) - self.center_
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf input: anomaly_score raises on the scores
            return Z - (Z @ self.components_.T) @ self.components_

    def _score(self, X: np.ndarray) -> np.ndarray:
        return (self._residual(X) ** 2).mean(axis=1)

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        return self._residual(X) ** 2

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"]["scaler"] = self.scaler_.to_dict()
        return meta, {**arrays, "components": self.components_, "center": self.center_}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        self.scaler_ = Standardizer.from_dict(meta["state"]["scaler"])
        self.components_ = arrays["components"]
        self.center_ = arrays["center"]
