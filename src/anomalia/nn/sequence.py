"""Networks on windows of a multivariate series (batch, steps, channels): forecasters and an encoder-decoder.

Pure modules: no I/O, no training loop, no preprocessing. Inputs are standardised windows; all channels
are modelled jointly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LSTMForecastNet(nn.Module):
    """Predicts the next step of every channel from a window (Hundman et al., KDD 2018).

    ``(batch, window, channels) -> (batch, channels)``.
    """

    def __init__(self, n_channels: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_channels, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, n_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class LSTMEncoderDecoder(nn.Module):
    """Encoder-decoder that reconstructs a window from a fixed-size code (Malhotra et al., 2016).

    The encoder's last hidden state is the code; the decoder unrolls it over the window's length.
    ``(batch, window, channels) -> (batch, window, channels)``.
    """

    def __init__(self, n_channels: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        drop = dropout if layers > 1 else 0.0
        self.encoder = nn.LSTM(n_channels, hidden, layers, batch_first=True, dropout=drop)
        self.decoder = nn.LSTM(hidden, hidden, layers, batch_first=True, dropout=drop)
        self.head = nn.Linear(hidden, n_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        code = h[-1].unsqueeze(1).expand(-1, x.shape[1], -1)
        out, _ = self.decoder(code)
        return self.head(out)


class DeepAnTNet(nn.Module):
    """DeepAnT (Munir et al., 2019): two convolution + max-pool blocks and a dense head predict the next step.

    ``(batch, window, channels) -> (batch, channels)``.
    """

    def __init__(
        self, n_channels: int, window: int, filters: int = 32, kernel: int = 3, hidden: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        pad = kernel // 2
        self.features = nn.Sequential(
            nn.Conv1d(n_channels, filters, kernel, padding=pad),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
            nn.Conv1d(filters, filters, kernel, padding=pad),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
            nn.Flatten(),
        )
        length = math.ceil(math.ceil(window / 2) / 2)  # two ceil-mode halvings
        self.head = nn.Sequential(
            nn.Linear(filters * length, hidden),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(hidden, n_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.transpose(1, 2)))
