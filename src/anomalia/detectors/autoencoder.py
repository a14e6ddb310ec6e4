"""Dense autoencoder: the anomaly score of a record is how badly the network reconstructs it."""

from __future__ import annotations

from dataclasses import KW_ONLY
from typing import Any

import numpy as np
import torch
from torch import nn

from .._core.params import int_tuple, interval, options
from ..nn.bagged import AutoEncoderBag, squared_errors
from .deep import DEEP_RULES, DeepDetector
from .registry import register
from .shape_defaults import ShapeDefaults, autoencoder_hidden

#: Networks trained side by side (their squared errors averaged) and whether each feature's error is
#: weighed by its inverse mean on the training rows; how these defaults were chosen:
#: :mod:`anomalia.detectors.shape_defaults`.
N_NETS = 1
NORMALIZE_ERRORS = True
#: Training rows the error weights are computed on at most.
MAX_WEIGHT_ROWS = 20_000


@register("autoencoder")
class AutoEncoder(ShapeDefaults, DeepDetector):
    """Dense autoencoder; score = mean squared reconstruction error of the standardised record, each
    feature's error divided by that feature's mean error on the training rows (``normalize_errors``).

    Parameters
    ----------
    hidden : tuple of int, optional
        Encoder layer sizes; the last is the code. The decoder mirrors them. None (default) means (64, 32),
        with the code narrowed to ``n_features // 4`` (at least 2) when ``contamination`` is set: a network
        wider than its input can learn to reconstruct the anomalies hidden in contaminated training data
        (how this rule was chosen: :mod:`anomalia.detectors.shape_defaults`).
    dropout : float
        Dropout after every hidden layer.
    normalize_errors : bool
        Weigh each feature's squared error by the inverse of its mean on the training rows after training
        (default True; the worst-reconstructed ``contamination`` share of rows left out of that mean), so a
        feature the network cannot predict even on normal rows does not drown the others. The weights are
        the buffer ``net_.feature_weight``, saved with the network; False keeps unit weights.
    n_nets : int
        Networks trained side by side on the same batches from different initial weights; the score
        averages their squared errors (default 1: more did not help on the development datasets).
    contamination : float, optional
        Share of anomalies the training data may hold. When set, training leaves that share of the
        highest-loss rows of each batch out of the gradient (``robust``) and the default threshold flags
        that share of held-out data.

    The keyword-only arguments shared by every deep detector (``epochs=100``, ``batch_size=256``,
    ``lr=1e-3``, ``weight_decay=1e-5``, ``patience=10``, ``robust``, ``validation_fraction=0.1``,
    ``device``) are described in :class:`~anomalia.detectors.DeepDetector`; ``threshold``,
    ``calibration_fraction``, ``keep_rows`` and ``random_state`` in :class:`~anomalia.BaseDetector`. The
    widths used are the fitted attribute ``hidden_`` (saved in the manifest; ``anomalia info`` shows it).
    """

    parameter_rules = {
        **DEEP_RULES,
        "hidden": [int_tuple(), options(None)],
        "n_nets": [interval(1, None, integer=True)],
        "normalize_errors": [options(True, False)],
    }
    test_params = {"hidden": (8, 4), "epochs": 3, "batch_size": 64}

    hidden: tuple[int, ...] | None = None
    _: KW_ONLY
    dropout: float = 0.0
    n_nets: int = N_NETS
    normalize_errors: bool = NORMALIZE_ERRORS

    def _resolve_widths(self, n_features: int) -> None:
        contaminated = self._trim_fraction() > 0
        self.hidden_ = tuple(self.hidden) if self.hidden is not None else autoencoder_hidden(n_features, contaminated)

    def _width_state(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden_)}

    def _set_width_state(self, state: dict[str, Any]) -> None:
        self.hidden_ = tuple(int(h) for h in state["hidden"])

    def _build(self, n_features: int) -> nn.Module:
        return AutoEncoderBag(n_features, self.hidden_, self.dropout, self.n_nets)

    nonfinite_propagates = True

    def _after_training(self, X: np.ndarray) -> None:
        if self.normalize_errors:
            self._fit_feature_weights(X)

    def _fit_feature_weights(self, X: np.ndarray) -> None:
        """Weigh each feature's squared error by the inverse of its mean on the training rows (the worst
        reconstructed ``contamination`` share left out), floored at 1 % of the mean over features."""
        rows = X[:MAX_WEIGHT_ROWS]
        errors = self._feature_scores(rows).astype(np.float64)  # weights are still ones here
        trim = self._trim_fraction()
        if trim > 0 and errors.shape[0] > 1:
            total = errors.mean(axis=1)
            errors = errors[total <= np.quantile(total, 1.0 - trim)]
        mean = errors.mean(axis=0)
        overall = max(float(mean.mean()), 1e-12)
        weight = overall / np.maximum(mean, 1e-2 * overall)
        self.net_.feature_weight.copy_(torch.from_numpy(weight.astype(np.float32)))

    def _load_net(self, net: nn.Module, arrays: dict[str, np.ndarray]) -> None:
        if "net.feature_weight" not in arrays:  # saved before the bag: one network, unit weights
            arrays = {k.replace("net.", "net.nets.0.", 1): v for k, v in arrays.items() if k.startswith("net.")}
            arrays["net.feature_weight"] = np.ones(self.schema_.n_features, np.float32)
        super()._load_net(net, arrays)

    def _row_loss(self, net: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return squared_errors(net(xb), xb).mean(dim=1)

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return squared_errors(net(xb), xb).mul_(net.feature_weight).mean(dim=1)  # in place: inference only

    def _row_feature_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return squared_errors(net(xb), xb) * net.feature_weight

    def _row_expected(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return net(xb).mean(dim=0)

    def _row_parts(self, net: nn.Module, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = squared_errors(net(xb), xb).mul_(net.feature_weight)
        return parts.mean(dim=1), parts
