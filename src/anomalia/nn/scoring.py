"""The scoring module of a deep detector: standardise, run the network, reduce to one score per row.

Python scoring and an exported graph are the same code: a detector's ``_score`` runs this module in
batches, and ``scoring_module()`` hands the same module out (for ONNX export, or a service that batches
requests itself). With ``parts=True`` it also returns the non-negative per-feature parts of each score,
from the same forward pass, for explanations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: ``score(net, standardised batch)`` -> (batch,) scores.
ScoreFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
#: ``parts(net, standardised batch)`` -> ((batch,) scores, (batch, features) non-negative parts).
PartsFn = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Scorer(nn.Module):
    """``x -> score(net, (x - mean) / scale)`` (or ``(score, parts)`` when built with ``parts``).

    Parameters
    ----------
    net : nn.Module
        The trained network, in eval mode.
    mean, scale : Tensor
        Standardisation, broadcastable against the input (after flattening when ``flatten``).
    score : callable
        The detector's per-row score of a standardised batch.
    parts : callable, optional
        The detector's (score, per-feature parts) of a standardised batch; the module then returns both.
    flatten : bool
        Flatten each row to a vector first (records); False keeps the input's shape (windows, images).
    """

    def __init__(
        self,
        net: nn.Module,
        mean: torch.Tensor,
        scale: torch.Tensor,
        score: ScoreFn,
        parts: PartsFn | None = None,
        *,
        flatten: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self._score = score
        self._parts = parts
        self.flatten = flatten
        self.train(False)  # a scoring module never trains

    @property
    def with_parts(self) -> bool:
        return self._parts is not None

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            x = x.reshape(x.shape[0], -1)
        return x.sub(self.mean).div_(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        z = self.standardise(x)
        if self._parts is not None:
            return self._parts(self.net, z)
        return self._score(self.net, z)
