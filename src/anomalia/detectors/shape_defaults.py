"""Layer widths that follow the data's shape, for the dense autoencoder (:class:`~anomalia.AutoEncoder`),
and the fitted attribute and manifest field that show the values used.

The rule was chosen on development datasets only (benchmarks/RESULTS.md, "Accuracy work"): ADBench datasets
other than the breast-cancer family, seed 0, both protocols. Candidates that narrow the layers with the
number of features (``n_features // 2`` then ``n_features // 4``, or ``n_features`` then ``n_features // 2``)
or train small tables for at least 1,000 optimiser steps all scored lower there than the fixed widths, so
the rule keeps them: the autoencoder's encoder is (64, 32), with the code narrowed to ``n_features // 4``
(at least 2) when the training data may be contaminated (the VAE keeps its fixed (128, 64) and code 8).

The scoring recipe was chosen later by the same protocol (RESULTS.md, "Tabular recipes"; script
``benchmarks/tabular_recipes.py``): against the plain mean squared error, candidates for input scaling
(median / IQR), per-feature error normalisation (by the mean or the median training error), dropout 0.2,
weight decay 1e-2, denoising (input noise 0.2), narrower widths and averages of 3 or 5 networks. Only the
normalisation by each feature's mean training error scored higher on the development datasets in the
novelty protocol (mean ROC-AUC 0.840 against 0.835; 0.730 against 0.732 under contamination), so it is on
by default (``AutoEncoder(normalize_errors=True)``); the widths stay (64, 32) and one network.

An argument given explicitly is used as it is. The widths used are the fitted attribute ``hidden_``, saved
in the manifest's detector state (``effective``), which ``anomalia info`` shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def autoencoder_hidden(n_features: int, contaminated: bool) -> tuple[int, int]:
    """Encoder widths of the dense autoencoder for ``n_features`` inputs."""
    return (64, max(2, min(32, n_features // 4))) if contaminated else (64, 32)


class ShapeDefaults:
    """Mixin for a :class:`~anomalia.detectors.DeepDetector` whose widths may be None: it resolves them at
    ``fit`` and keeps them through save / load.

    Subclasses implement ``_resolve_widths(n_features)`` (set ``hidden_``), ``_width_state()`` and
    ``_set_width_state(state)``.
    """

    def _resolve_widths(self, n_features: int) -> None:
        raise NotImplementedError

    def _width_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_width_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        self._resolve_widths(X.shape[1])
        super()._fit(X, rng, callback)  # type: ignore[misc]

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()  # type: ignore[misc]
        meta["state"]["effective"] = self._width_state()
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        effective = meta.get("state", {}).get("effective")
        if effective is None:  # saved before this field: the rule gives the same widths
            self._resolve_widths(int(meta["schema"]["n_features"]))
        else:
            self._set_width_state(effective)
        super()._set_state(meta, arrays)  # type: ignore[misc]
