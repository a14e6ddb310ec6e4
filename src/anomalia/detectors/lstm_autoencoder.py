"""LSTM encoder-decoder on windows (Malhotra et al., 2016): the score of a step is how badly the network
reconstructs the window that ends at it."""

from __future__ import annotations

from dataclasses import KW_ONLY

import torch
from torch import nn

from .._core.params import interval
from ..nn import LSTMEncoderDecoder
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

    hidden: int = 32
    layers: int = 1
    _: KW_ONLY
    lr: float = 3e-3

    def _build(self, n_features: int) -> nn.Module:
        return LSTMEncoderDecoder(n_features, self.hidden, self.layers, self.dropout)

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return (net(wb) - wb).pow(2).mean(dim=1)

    def _sample_expected(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return net(wb)[:, -1]
