"""Forecasting detectors: a network predicts each step from the window before it; the score of a step is
its standardised squared prediction error, averaged over channels (and optionally EWMA-smoothed)."""

from __future__ import annotations

from dataclasses import KW_ONLY

import torch
from torch import nn

from .._core.params import interval
from ..nn import DeepAnTNet, LSTMForecastNet
from .registry import register
from .series import SERIES_RULES, SeriesDetector


class _Forecaster(SeriesDetector):
    target_steps = 1

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return (net(wb[:, :-1]) - wb[:, -1]).pow(2)

    def _sample_expected(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return net(wb[:, :-1])


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

    hidden: int = 32
    layers: int = 1
    _: KW_ONLY
    lr: float = 3e-3

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

    filters: int = 32
    kernel: int = 3
    hidden: int = 64

    def _build(self, n_features: int) -> nn.Module:
        return DeepAnTNet(n_features, self.window, self.filters, self.kernel, self.hidden, self.dropout)
