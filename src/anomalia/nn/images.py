"""Operations on image batches (n, C, H, W): Gaussian smoothing of maps and bilinear resizing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian smoothing of (n, C, H, W) maps (reflect padding); ``sigma`` in pixels."""
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, (min(maps.shape[-2:]) - 1) or 1)
    x = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = maps.shape[1]
    mode = "reflect" if min(maps.shape[-2:]) > radius else "replicate"
    out = F.pad(maps, (radius, radius, 0, 0), mode=mode)
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode=mode)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def resize(X: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (n, C, H, W) images (anti-aliased when shrinking)."""
    if tuple(X.shape[-2:]) == tuple(size):
        return X
    shrink = size[0] < X.shape[-2] or size[1] < X.shape[-1]
    return F.interpolate(X, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of (n, C, h, w) maps to ``size`` (maps back at the input's size)."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
