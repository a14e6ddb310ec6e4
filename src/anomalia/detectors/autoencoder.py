"""Dense autoencoder: the anomaly score of a record is how badly the network reconstructs it."""

from __future__ import annotations

import torch
from torch import nn

from .._core import RandomState
from .._core.params import int_tuple, options
from ..nn import DenseAutoEncoder
from ..scoring import Threshold
from .deep import DEEP_RULES, DeepDetector
from .registry import register


@register("autoencoder")
class AutoEncoder(DeepDetector):
    """Dense autoencoder; score = mean squared reconstruction error of the standardised record.

    Parameters
    ----------
    hidden : tuple of int, optional
        Encoder layer sizes; the last is the code. The decoder mirrors them. None (default) means (64, 32),
        with the code narrowed to ``n_features // 4`` (at least 2) when ``contamination`` is set: a network
        wider than its input can learn to reconstruct the anomalies hidden in contaminated training data.
    contamination : float, optional
        Share of anomalies the training data may hold. When set, training leaves that share of the
        highest-loss rows of each batch out of the gradient (``robust``) and the default threshold flags
        that share of held-out data.
    robust : bool, optional
        Force the trimmed (robust) loss on or off; None = on exactly when ``contamination`` is set.
    threshold : str or Threshold, optional
        Decision rule, e.g. ``"false-alarm:0.01"`` (default), ``"pot:1e-4"``, ``"best-f1"``.
    calibration_fraction : float
        Share of the normal data held out (at most 5,000 rows) for conformal calibration.
    validation_fraction : float
        Share of the remaining rows used for early stopping.
    """

    parameter_rules = {**DEEP_RULES, "hidden": [int_tuple(), options(None)]}
    test_params = {"hidden": (8, 4), "epochs": 3, "batch_size": 64}

    def __init__(
        self,
        hidden: tuple[int, ...] | None = None,
        *,
        dropout: float = 0.0,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        contamination: float | None = None,
        robust: bool | None = None,
        threshold: str | Threshold | None = None,
        calibration_fraction: float = 0.2,
        validation_fraction: float = 0.1,
        device: str = "auto",
        random_state: RandomState = None,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.contamination = contamination
        self.robust = robust
        self.threshold = threshold
        self.calibration_fraction = calibration_fraction
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state

    def _hidden(self, n_features: int) -> tuple[int, ...]:
        if self.hidden is not None:
            return tuple(self.hidden)
        if self._trim_fraction() > 0:
            return (64, max(2, min(32, n_features // 4)))
        return (64, 32)

    def _build(self, n_features: int) -> nn.Module:
        return DenseAutoEncoder(n_features, self._hidden(n_features), self.dropout)

    nonfinite_propagates = True

    def _row_loss(self, net: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return (net(xb) - xb).pow(2).mean(dim=1)

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return net(xb).sub_(xb).pow_(2).mean(dim=1)  # in place: inference only, no autograd

    def _row_feature_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return (net(xb) - xb).pow(2)
