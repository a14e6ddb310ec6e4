"""Small byte-level language models (a GRU and a causal transformer) and their per-token losses.

Pure module: no I/O, no training loop, no tokenisation (token ids 0-255 are bytes, 256 the boundary of a
text, 257 padding; :mod:`anomalia.data.text` makes them).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ByteTransformer(nn.Module):
    """Pre-norm causal transformer: ``(batch, steps) int64 -> (batch, steps, n_out)`` next-token logits.

    Parameters
    ----------
    n_in, n_out : int
        Input vocabulary (bytes, boundary, padding) and output vocabulary (bytes, boundary).
    length : int
        Longest input (learned positions).
    width, layers, heads : int
        Model width, transformer blocks, attention heads.
    dropout : float
        Dropout in the blocks.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        length: int,
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_in, width)
        self.position = nn.Embedding(length, width)
        block = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = tokens.shape[1]
        pos = torch.arange(steps, device=tokens.device)
        h = self.embed(tokens) + self.position(pos)[None]
        causal = torch.triu(torch.full((steps, steps), float("-inf"), device=tokens.device), diagonal=1)
        h = self.blocks(h, mask=causal, is_causal=True)
        return self.head(self.norm(h))


def token_nll(net: nn.Module, windows: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative log-likelihood (nats) of each next token of ``windows`` (batch, steps + 1) and the mask of
    real (non-padding) targets, both (batch, steps). The batch is cut to its longest real window first."""
    real = windows != pad
    last = int(real.sum(dim=1).max())
    windows = windows[:, : max(last, 2)]
    inputs, targets = windows[:, :-1], windows[:, 1:]
    logits = net(inputs)
    mask = targets != pad
    nll = F.cross_entropy(logits.transpose(1, 2), targets.clamp_max(logits.shape[-1] - 1), reduction="none")
    return nll * mask, mask


class ByteGRU(nn.Module):
    """Byte-level GRU language model: ``(batch, steps) int64 -> (batch, steps, n_out)`` next-token logits.

    Causal by construction (a recurrent network reads left to right); needs no position table, so a window
    may be any length.

    Parameters
    ----------
    n_in, n_out : int
        Input vocabulary (bytes, boundary, padding) and output vocabulary (bytes, boundary).
    width, layers : int
        Hidden size (also the byte embedding's size) and stacked GRU layers.
    dropout : float
        Dropout between the layers and before the output layer.
    """

    def __init__(self, n_in: int, n_out: int, width: int = 128, layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_in, width)
        self.gru = nn.GRU(width, width, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.embed(tokens))
        return self.head(self.drop(h))
