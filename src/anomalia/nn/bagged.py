"""Several dense autoencoders trained side by side on the same batches, and per-feature error weights.

Pure module: inputs are already standardised. The members differ only in their initial weights; the
anomaly score averages their squared errors, which takes out most of the variance one network's random
start adds to its score.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .dense import DenseAutoEncoder


class AutoEncoderBag(nn.Module):
    """``n_nets`` :class:`DenseAutoEncoder` with the same widths, and a ``feature_weight`` buffer (ones until
    the detector sets it) that weighs each feature's squared error in the score.

    ``forward`` returns every member's reconstruction, shape (n_nets, batch, features).
    """

    def __init__(self, n_features: int, hidden: Sequence[int], dropout: float = 0.0, n_nets: int = 1) -> None:
        super().__init__()
        self.nets = nn.ModuleList(DenseAutoEncoder(n_features, hidden, dropout) for _ in range(n_nets))
        self.register_buffer("feature_weight", torch.ones(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.nets])


def squared_errors(reconstructions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Each feature's squared error averaged over the members, shape (batch, features)."""
    return (reconstructions - x).pow(2).mean(dim=0)
