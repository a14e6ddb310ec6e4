"""Convolutional autoencoder for images: the score of an image is how badly the network reconstructs it,
and the map of where it is wrong is the smoothed squared residual per pixel."""

from __future__ import annotations

import torch
from torch import nn

from .._core import RandomState
from .._core.params import int_tuple, interval
from ..nn.conv import ConvAutoEncoderNet
from ..scoring import Threshold
from .deep import DEEP_RULES
from .image import IMAGE_RULES, ImageDetector
from .registry import register


@register("conv-autoencoder")
class ConvAutoEncoder(ImageDetector):
    """Convolutional autoencoder on images; score = mean squared reconstruction error per image.

    Parameters
    ----------
    channels : tuple of int
        Channels of the encoder's stages; each halves the image size. The decoder mirrors them.
    latent : int
        Size of the dense code between encoder and decoder (0: fully convolutional).
    layout : {"auto", "nhw", "nchw", "nhwc"}
        How ``X`` holds its images: (n, H, W) gray, channels first or channels last. ``"auto"`` reads it
        from the shape and asks for it when the shape is ambiguous.
    image_size : (height, width), optional
        Resize every input to this size (bilinear) before the network; maps come back at the input's size.
        Without it every image must have the size of the training images.
    smoothing : float
        Standard deviation in pixels of the Gaussian that smooths the residual maps of :meth:`anomaly_map`
        and :meth:`explain` (0: none). The score itself is not smoothed.
    contamination, robust, threshold, calibration_fraction, validation_fraction, epochs, batch_size, lr,
    weight_decay, patience, device, random_state
        As for :class:`anomalia.AutoEncoder`.
    """

    parameter_rules = {
        **{k: v for k, v in DEEP_RULES.items() if k != "dropout"},
        **IMAGE_RULES,
        "channels": [int_tuple()],
        "latent": [interval(0, None, integer=True)],
    }
    test_params = {"channels": (4, 8), "latent": 4, "epochs": 2, "batch_size": 32}

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64, 128),
        latent: int = 32,
        *,
        layout: str = "auto",
        image_size: tuple[int, int] | None = None,
        smoothing: float = 1.0,
        epochs: int = 30,
        batch_size: int = 64,
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
        self.channels = channels
        self.latent = latent
        self.layout = layout
        self.image_size = image_size
        self.smoothing = smoothing
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

    def _build(self, n_channels: int) -> nn.Module:
        return ConvAutoEncoderNet(self.image_shape_, tuple(self.channels), self.latent)

    def _row_pixel_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return (net(xb) - xb).pow(2)

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return self._row_pixel_scores(net, xb).flatten(1).mean(dim=1)
