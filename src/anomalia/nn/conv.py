"""Convolutional networks on images: the autoencoder and the transformation classifier.

Pure modules: no I/O, no training loop, no preprocessing. Inputs are standardised (n, C, H, W) batches.
Images of any size work: the autoencoder pads them to a multiple of its total stride and crops its output.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(c_in: int, c_out: int, *, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, leaky ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.1),
    )


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """Twice the size: 4x4 transposed convolution with stride 2, batch norm, leaky ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.1),
    )


class ConvAutoEncoderNet(nn.Module):
    """Strided-conv encoder, dense bottleneck of ``latent`` units, mirrored transposed-conv decoder.

    Parameters
    ----------
    image_shape : (C, H, W)
        Shape of the (standardised) input images.
    channels : sequence of int
        Channels of the encoder's stages; each stage halves the size. The decoder mirrors them.
    latent : int
        Size of the code; 0 keeps a fully convolutional bottleneck (weaker for anomaly detection, since it
        also learns to reconstruct what it never saw).
    """

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = (32, 64, 128), latent: int = 32) -> None:
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        stride = 2 ** len(channels)
        self.padded = (-(-h // stride) * stride, -(-w // stride) * stride)
        self.code_shape = (channels[-1], self.padded[0] // stride, self.padded[1] // stride)
        sizes = [c, *channels]
        self.encoder = nn.Sequential(*(conv_block(a, b, stride=2) for a, b in itertools.pairwise(sizes)))
        n_code = channels[-1] * self.code_shape[1] * self.code_shape[2]
        self.bottleneck = (
            nn.Sequential(nn.Flatten(), nn.Linear(n_code, latent), nn.LeakyReLU(0.1), nn.Linear(latent, n_code))
            if latent
            else nn.Identity()
        )
        rev = list(channels[::-1])
        self.decoder = nn.Sequential(
            *(up_block(a, b) for a, b in itertools.pairwise(rev)),
            nn.ConvTranspose2d(rev[-1], c, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = self.padded[0] - h, self.padded[1] - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        z = self.bottleneck(self.encoder(x)).reshape(x.shape[0], *self.code_shape)
        return self.decoder(z)[..., :h, :w]


#: The transformations of the classifier: (number of 90-degree rotations, horizontal flip).
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((r, f) for f in (False, True) for r in range(4))


def transform_all(x: torch.Tensor, transforms: Sequence[tuple[int, bool]] = TRANSFORMS) -> torch.Tensor:
    """Every transformation of every image, (T * n, C, S, S), grouped by transformation.

    Non-square images are padded (with zeros, the mean of standardised data) to a square first, so that
    rotations keep the shape.
    """
    h, w = x.shape[-2:]
    if h != w:
        s = max(h, w)
        x = F.pad(x, ((s - w) // 2, s - w - (s - w) // 2, (s - h) // 2, s - h - (s - h) // 2))
    out = []
    for r, flip in transforms:
        xf = x.flip(-1) if flip else x
        out.append(_rot90(xf, r))
    return torch.cat(out)


def _rot90(x: torch.Tensor, k: int) -> torch.Tensor:
    """``torch.rot90(x, k, (-2, -1))`` written as flips and a transpose, which every ONNX exporter knows."""
    k %= 4
    if k == 1:
        return x.transpose(-2, -1).flip(-2)
    if k == 2:
        return x.flip(-2).flip(-1)
    if k == 3:
        return x.flip(-2).transpose(-2, -1)
    return x


class ConvClassifierNet(nn.Module):
    """A small CNN that tells which of ``n_classes`` transformations was applied to an image.

    One 3x3 conv block per stage (every stage after the first halves the size), global average pooling
    and a linear layer.
    """

    def __init__(self, in_channels: int, n_classes: int, channels: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, width in enumerate(channels):
            layers.append(conv_block(c, width, stride=1 if i == 0 else 2))
            c = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
