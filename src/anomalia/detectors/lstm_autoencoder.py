"""LSTM encoder-decoder on windows (Malhotra et al., 2016): the score of a step is how badly the network
reconstructs the window that ends at it."""

from __future__ import annotations

import torch
from torch import nn

from .._core import RandomState
from .._core.params import interval
from ..nn import LSTMEncoderDecoder
from ..scoring import Threshold
from .registry import register
from .series import SERIES_RULES, SeriesDetector


@register("lstm-autoencoder")
class LSTMAutoEncoder(SeriesDetector):
    """LSTM encoder-decoder that reconstructs each window of ``window`` steps from a code of ``hidden`` numbers.

    Score of step t: mean squared reconstruction error (standardised units) of the window ending at t, over
    its steps and channels. Uses only steps up to t, so it is usable online.

    Parameters
    ----------
    window : int
        Steps per window.
    hidden, layers : int
        LSTM size (``hidden`` is also the code size).

    Other parameters as :class:`~anomalia.LSTMForecaster`.
    """

    parameter_rules = {
        **SERIES_RULES,
        "hidden": [interval(1, None, integer=True)],
        "layers": [interval(1, None, integer=True)],
    }
    test_params = {"window": 8, "hidden": 8, "epochs": 2, "batch_size": 64}

    def __init__(
        self,
        window: int = 32,
        hidden: int = 32,
        layers: int = 1,
        *,
        smoothing: int = 0,
        train_stride: int = 1,
        time_column: str | None = None,
        resample: str | None = None,
        fill: str = "error",
        dropout: float = 0.0,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        patience: int = 5,
        contamination: float | None = None,
        robust: bool | None = None,
        threshold: str | Threshold | None = None,
        calibration_fraction: float = 0.2,
        validation_fraction: float = 0.1,
        device: str = "auto",
        random_state: RandomState = None,
    ) -> None:
        self.window = window
        self.hidden = hidden
        self.layers = layers
        self.smoothing = smoothing
        self.train_stride = train_stride
        self.time_column = time_column
        self.resample = resample
        self.fill = fill
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

    def _build(self, n_features: int) -> nn.Module:
        return LSTMEncoderDecoder(n_features, self.hidden, self.layers, self.dropout)

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return (net(wb) - wb).pow(2).mean(dim=1)
