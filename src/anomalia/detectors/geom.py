"""GEOM (Golan & El-Yaniv, 2018): a CNN learns which geometric transformation (rotation by 0/90/180/270
degrees, with or without a horizontal flip) was applied to a normal image. On an image unlike the normal
ones it cannot tell, and the score is how unsure it is: the mean over transformations of the negative
log-probability it gives to the right one."""

from __future__ import annotations

from dataclasses import KW_ONLY

import torch
import torch.nn.functional as F
from torch import nn

from .._core.params import int_tuple, options
from ..nn.conv import TRANSFORMS, ConvClassifierNet, transform_all
from .deep import DEEP_RULES
from .image import IMAGE_RULES, ImageDetector
from .registry import register


@register("geom")
class GEOM(ImageDetector):
    """Self-supervised transformation classifier on images (GEOM); trained from scratch on normal images.

    Parameters
    ----------
    channels : tuple of int
        Channels of the classifier's stages (a 3x3 conv block each; every stage after the first halves the
        size).
    flips : bool
        Use the 8 transformations rotation x horizontal flip (True) or the 4 rotations only (False).
    layout, image_size, smoothing
        As for :class:`ConvAutoEncoder`; the map of :meth:`anomaly_map` is the smoothed
        |gradient x input| of the score.
    epochs : int
        Passes over the normal images; each image is seen under every transformation in every pass.
    batch_size : int
        Images per step (the network sees ``batch_size`` x the number of transformations).
    contamination, robust, threshold, calibration_fraction, validation_fraction, lr, weight_decay,
    patience, device, random_state
        As for :class:`anomalia.AutoEncoder`.
    """

    parameter_rules = {
        **{k: v for k, v in DEEP_RULES.items() if k != "dropout"},
        **IMAGE_RULES,
        "channels": [int_tuple()],
        "flips": [options(True, False)],
    }
    test_params = {"channels": (4, 8), "epochs": 2, "batch_size": 32}

    channels: tuple[int, ...] = (32, 64, 128)
    flips: bool = True
    _: KW_ONLY
    smoothing: float = 1.0
    epochs: int = 10
    batch_size: int = 32
    patience: int = 3

    @property
    def _transforms(self) -> tuple[tuple[int, bool], ...]:
        return TRANSFORMS if self.flips else TRANSFORMS[:4]

    def _build(self, n_channels: int) -> nn.Module:
        return ConvClassifierNet(n_channels, len(self._transforms), tuple(self.channels))

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        t = len(self._transforms)
        logits = net(transform_all(xb, self._transforms))
        target = torch.arange(t, device=xb.device).repeat_interleave(xb.shape[0])
        return F.cross_entropy(logits, target, reduction="none").view(t, -1).mean(dim=0)

    def _row_pixel_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            x = xb.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._row_score(net, x).sum(), x)
        return (grad * x).abs().detach()
