"""Forecasting detectors: a network predicts each step from the window before it; the score of a step is
its standardised squared prediction error, averaged over channels (and optionally EWMA-smoothed)."""

from __future__ import annotations

import torch
from torch import nn

from .._core import RandomState
from .._core.params import interval
from ..nn import DeepAnTNet, LSTMForecastNet
from ..scoring import Threshold
from .registry import register
from .series import SERIES_RULES, SeriesDetector


class _Forecaster(SeriesDetector):
    target_steps = 1

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return (net(wb[:, :-1]) - wb[:, -1]).pow(2)


@register("lstm-forecaster")
class LSTMForecaster(_Forecaster):
    """LSTM that predicts the next step of every channel from the ``window`` steps before it (Hundman et al.,
    KDD 2018). Score of step t: mean over channels of the squared error of its prediction, in units of each
    channel's standard deviation; ``smoothing`` applies Hundman's EWMA. Channels are modelled jointly.

    Parameters
    ----------
    window : int
        Steps of history each prediction reads.
    hidden, layers : int
        LSTM size.

    The other parameters (``smoothing``, ``time_column``, ``resample``, ``fill``, training and threshold
    arguments) are described in :class:`~anomalia.detectors.series.SeriesDetector` and
    :class:`~anomalia.AutoEncoder`.
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
        return LSTMForecastNet(n_features, self.hidden, self.layers, self.dropout)


@register("cnn-forecaster")
class CNNForecaster(_Forecaster):
    """DeepAnT (Munir et al., 2019): a 1-D convolutional network predicts the next step from the ``window``
    steps before it. Score as :class:`LSTMForecaster`; much faster to train on CPUs.

    Parameters
    ----------
    window : int
        Steps of history each prediction reads.
    filters, kernel : int
        Convolutions: channels and kernel size of both blocks.
    hidden : int
        Width of the dense layer before the output.
    """

    parameter_rules = {
        **SERIES_RULES,
        "filters": [interval(1, None, integer=True)],
        "kernel": [interval(1, None, integer=True)],
        "hidden": [interval(1, None, integer=True)],
    }
    test_params = {"window": 8, "filters": 4, "hidden": 8, "epochs": 2, "batch_size": 64}

    def __init__(
        self,
        window: int = 32,
        filters: int = 32,
        kernel: int = 3,
        hidden: int = 64,
        *,
        smoothing: int = 0,
        train_stride: int = 1,
        time_column: str | None = None,
        resample: str | None = None,
        fill: str = "error",
        dropout: float = 0.0,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
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
        self.filters = filters
        self.kernel = kernel
        self.hidden = hidden
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
        return DeepAnTNet(n_features, self.window, self.filters, self.kernel, self.hidden, self.dropout)
