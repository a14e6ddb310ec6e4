"""Forecasting detectors: a network predicts each step from the window before it; the score of a step is
its standardised squared prediction error, averaged over channels (and optionally EWMA-smoothed)."""

from __future__ import annotations

from dataclasses import KW_ONLY

import torch
from torch import nn

from .._core import check_is_fitted
from .._core.params import interval
from ..nn import DeepAnTNet, LSTMForecastNet, Scorer
from ..nn.exact import DeepAnTFloat64, Float32Out, LSTMForecastFloat64
from .registry import register
from .series import SERIES_RULES, SeriesDetector


class _Forecaster(SeriesDetector):
    target_steps = 1
    score_values = 1 << 16  # float64 scoring: chunks whose activations stay in the caches

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return (net(wb[:, :-1]) - wb[:, -1]).pow(2)

    def _sample_expected(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return net(wb[:, :-1])

    def _float64_net(self) -> nn.Module:
        """A float64 copy of the trained network for scoring, in operations onnxruntime runs in float64."""
        raise NotImplementedError

    def scoring_module(self, *, parts: bool = False) -> nn.Module:
        """The scoring module (see :meth:`SeriesDetector.scoring_module`), computed in float64 inside
        (:mod:`anomalia.nn.exact`): a near-perfect forecast's squared error then has the same digits in
        torch and in an exported ONNX graph. Its input and output stay float32."""
        check_is_fitted(self)
        dev = self.device_
        return Float32Out(
            Scorer(
                self._float64_net().to(dev),
                torch.from_numpy(self.scaler_.mean).to(dev, torch.float64),
                torch.from_numpy(self.scaler_.scale).to(dev, torch.float64),
                self._sample_score,
                self._sample_parts if parts else None,
                flatten=False,
            )
        )


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

    def _float64_net(self) -> nn.Module:
        return LSTMForecastFloat64(self.net_.eval())


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

    def _float64_net(self) -> nn.Module:
        return DeepAnTFloat64(self.net_.eval())
