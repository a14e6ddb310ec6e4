"""Convolutional autoencoder for images: the score of an image is how badly the network reconstructs it,
and the map of where it is wrong is the squared residual per pixel.

The residual (input minus reconstruction) is smoothed with a Gaussian before it is squared, so that an
error spread over a region (a missing sleeve, a strap) counts more than pixel noise along edges; and with
``normalise`` each pixel's squared smoothed residual is divided by its mean on the normal training images,
so that an error counts by how unusual it is at that place. Both matter on Fashion-MNIST: see
benchmarks/RESULTS.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._core.params import int_tuple, interval, options
from ..nn import batched, gaussian_blur
from ..nn.conv import ConvAutoEncoderNet
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
    normalise : bool
        Divide each pixel's squared residual by its mean over the normal training images (score and maps).
    smoothing : float
        Standard deviation in pixels of the Gaussian that smooths the residual before it is squared, for the
        score and the maps (0: none).
    contamination, robust, threshold, calibration_fraction, validation_fraction, epochs, batch_size, lr,
    weight_decay, patience, device, random_state
        As for :class:`anomalia.AutoEncoder`.
    """

    parameter_rules = {
        **{k: v for k, v in DEEP_RULES.items() if k != "dropout"},
        **IMAGE_RULES,
        "channels": [int_tuple()],
        "latent": [interval(0, None, integer=True)],
        "normalise": [options(True, False)],
    }
    test_params = {"channels": (4, 8), "latent": 4, "epochs": 2, "batch_size": 32}

    channels: tuple[int, ...] = (32, 64, 128)
    latent: int = 32
    normalise: bool = True

    def _build(self, n_channels: int) -> nn.Module:
        return ConvAutoEncoderNet(self.image_shape_, tuple(self.channels), self.latent)

    def _row_loss(self, net: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return (net(xb) - xb).pow(2).flatten(1).mean(dim=1)

    def _map_sigma(self) -> float:
        return 0.0  # the residual is smoothed already

    def _squared_residual(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(net(xb) - xb, float(self.smoothing)).pow(2)

    def _row_pixel_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        sq = self._squared_residual(net, xb)
        return sq / self.pixel_scale_.to(sq.device) if self.normalise else sq

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return self._row_pixel_scores(net, xb).flatten(1).mean(dim=1)

    # ---------------------------------------------------------------- per-pixel scale of normal residuals
    def _after_train(self, X: np.ndarray, rng: np.random.Generator) -> None:
        rows = X if X.shape[0] <= 2000 else X[np.sort(rng.choice(X.shape[0], 2000, replace=False))]
        sq = self._maps_raw(rows)
        mean = sq.mean(axis=0)
        floor = max(float(mean.mean()) * 1e-2, 1e-12)  # a pixel always reconstructed perfectly must not explode
        self.pixel_scale_ = torch.from_numpy(np.maximum(mean, floor).astype(np.float32))

    def _maps_raw(self, X: np.ndarray) -> np.ndarray:
        module = self._scorer(self._squared_residual)
        return batched(module, X, device=self.device_, batch_size=self._score_batch_size())

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        return meta, {**arrays, "pixel_scale": self.pixel_scale_.numpy()}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.pixel_scale_ = torch.from_numpy(arrays["pixel_scale"].copy())
        super()._set_state(meta, arrays)
