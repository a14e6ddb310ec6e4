"""Histograms of gradient orientation (in the manner of HOG, Dalal & Triggs 2005) for image batches (n, C, H, W):
a description of an image's local shape that does not depend on its brightness."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def orientation_histograms(images: torch.Tensor, *, bins: int = 8, cell: int = 4, signed: bool = True) -> torch.Tensor:
    """Gradient-orientation histograms of (n, C, H, W) images, one unit-length row per image.

    Each pixel's Sobel gradient votes its magnitude into the two nearest of ``bins`` orientation bins
    (linear interpolation; over the full circle when ``signed``, else modulo 180 degrees). Votes are averaged
    over square cells of ``cell`` pixels that overlap by half (stride ``cell // 2``) and summed over channels;
    the concatenated histograms are scaled to unit Euclidean length, which removes the image's contrast.

    Returns
    -------
    torch.Tensor of shape (n, bins * cells)
    """
    n, c = images.shape[:2]
    x = images.reshape(n * c, 1, *images.shape[-2:])
    k = _SOBEL.to(images.device, images.dtype).view(1, 1, 3, 3)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, k), F.conv2d(padded, k.transpose(2, 3))
    magnitude = torch.sqrt(gx * gx + gy * gy)
    period = 2 * math.pi if signed else math.pi
    position = torch.remainder(torch.atan2(gy, gx), period) * (bins / period)
    low = position.floor()
    upper = position - low
    low = low.long() % bins
    votes = torch.zeros(n * c, bins, *x.shape[-2:], dtype=images.dtype, device=images.device)
    votes.scatter_add_(1, low, magnitude * (1.0 - upper))
    votes.scatter_add_(1, (low + 1) % bins, magnitude * upper)
    size = max(1, min(cell, *x.shape[-2:]))
    cells = F.avg_pool2d(votes, size, stride=max(1, size // 2))
    return F.normalize(cells.reshape(n, c, -1).sum(dim=1), dim=1)
