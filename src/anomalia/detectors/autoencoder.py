"""Dense autoencoder: the anomaly score of a record is how badly the network reconstructs it."""

from __future__ import annotations

from dataclasses import KW_ONLY
from typing import Any

import torch
from torch import nn

from .._core.params import int_tuple, options
from ..nn import DenseAutoEncoder
from .deep import DEEP_RULES, DeepDetector
from .registry import register
from .shape_defaults import ShapeDefaults, autoencoder_hidden


@register("autoencoder")
class AutoEncoder(ShapeDefaults, DeepDetector):
    """Dense autoencoder; score = mean squared reconstruction error of the standardised record.

    Parameters
    ----------
    hidden : tuple of int, optional
        Encoder layer sizes; the last is the code. The decoder mirrors them. None (default) means (64, 32),
        with the code narrowed to ``n_features // 4`` (at least 2) when ``contamination`` is set: a network
        wider than its input can learn to reconstruct the anomalies hidden in contaminated training data
        (how this rule was chosen: :mod:`anomalia.detectors.shape_defaults`).
    dropout : float
        Dropout after every hidden layer.
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

    parameter_rules = {**DEEP_RULES, "hidden": [int_tuple(), options(None)]}
    test_params = {"hidden": (8, 4), "epochs": 3, "batch_size": 64}

    hidden: tuple[int, ...] | None = None
    _: KW_ONLY
    dropout: float = 0.0

    def _resolve_widths(self, n_features: int) -> None:
        contaminated = self._trim_fraction() > 0
        self.hidden_ = tuple(self.hidden) if self.hidden is not None else autoencoder_hidden(n_features, contaminated)

    def _width_state(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden_)}

    def _set_width_state(self, state: dict[str, Any]) -> None:
        self.hidden_ = tuple(int(h) for h in state["hidden"])

    def _build(self, n_features: int) -> nn.Module:
        return DenseAutoEncoder(n_features, self.hidden_, self.dropout)

    nonfinite_propagates = True

    def _row_loss(self, net: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return (net(xb) - xb).pow(2).mean(dim=1)

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return net(xb).sub_(xb).pow_(2).mean(dim=1)  # in place: inference only, no autograd

    def _row_feature_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return (net(xb) - xb).pow(2)

    def _row_expected(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return net(xb)

    def _row_parts(self, net: nn.Module, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = net(xb).sub_(xb).pow_(2)
        return parts.mean(dim=1), parts
