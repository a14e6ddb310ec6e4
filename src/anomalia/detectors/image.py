"""What the image detectors share: image input (layouts, explicit resize), per-channel standardisation,
per-pixel anomaly maps and saving the image shape. Subclasses build their network and say how an image is
lost and scored, like every :class:`DeepDetector`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._core import Schema, check_is_fitted
from .._core.images import LAYOUTS, as_image_array, check_image_fit_input, check_image_shape
from .._core.params import Rule, options
from ..nn import batched, resolve_device
from .base import normalise_shares
from .deep import DeepDetector

#: Pixels (C * H * W * images) per scoring batch: large batches, bounded memory.
SCORE_PIXELS = 2**20


def _size_rule() -> Rule:
    def check(v: Any) -> bool:
        return v is None or (
            isinstance(v, tuple | list)
            and len(v) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 4 for s in v)
        )

    return Rule(check, "None or (height, width) with two ints >= 4")


IMAGE_RULES: dict[str, list[Rule]] = {
    "layout": [options(*LAYOUTS)],
    "image_size": [_size_rule()],
    "smoothing": [Rule(lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0, "a number >= 0")],
}


@dataclass(frozen=True)
class ChannelScaler:
    """``(x - mean[c]) / scale[c]`` per channel, learned at fit."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> ChannelScaler:
        mean = X.mean(axis=(0, 2, 3), dtype=np.float64)
        std = X.std(axis=(0, 2, 3), dtype=np.float64)
        scale = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean[:, None, None]) / self.scale[:, None, None]).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelScaler:
        return cls(np.asarray(d["mean"], dtype=np.float32), np.asarray(d["scale"], dtype=np.float32))


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


class ImageDetector(DeepDetector):
    """Base of the image detectors.

    ``X`` is a batch of images: (n, H, W), (n, C, H, W) or (n, H, W, C) (``layout``), any numeric dtype
    (uint8 as read from files, or floats). Scores are one per image; :meth:`anomaly_map` gives a map per
    pixel and :meth:`explain` each pixel's (and channel's) share of the score, shape (n, C * H * W).
    """

    #: (n, C, H, W) after :meth:`_validate`.
    input_ndim: ClassVar[int] = 4
    layout: str
    image_size: tuple[int, int] | None
    smoothing: float
    scaler_: ChannelScaler  # type: ignore[assignment]

    @classmethod
    def _contract_data(cls, rng: np.random.Generator, n: int) -> np.ndarray:
        """Small gray images: a bright blob at a random place near the centre, plus noise."""
        yy, xx = np.mgrid[0:12, 0:12]
        cy, cx = rng.uniform(4, 8, size=(2, n, 1, 1))
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
        return (blob + 0.05 * rng.normal(size=(n, 12, 12))).astype(np.float32)

    # ---------------------------------------------------------------- input
    def _images(self, X: Any, *, fitting: bool) -> np.ndarray:
        """``X`` as float32 (n, C, H, W) at its own size (the layout found at fit is kept for 'auto')."""
        if fitting:
            arr, self.layout_ = check_image_fit_input(X, layout=self.layout)
            return arr
        layout = self.layout
        if layout == "auto" and np.ndim(X) == (3 if self.layout_ == "nhw" else 4):
            layout = self.layout_
        return as_image_array(X, layout=layout)[0]

    def _resize(self, arr: np.ndarray) -> np.ndarray:
        if self.image_size is None or tuple(arr.shape[-2:]) == tuple(self.image_size):
            return arr
        return resize(torch.from_numpy(arr), tuple(self.image_size)).numpy()

    def _validate(self, X: Any, *, fitting: bool, finite: bool = True) -> tuple[np.ndarray, Schema]:
        if not fitting:
            check_is_fitted(self)
        arr = self._resize(self._images(X, fitting=fitting))
        if not fitting:
            check_image_shape(arr.shape[1:], self.image_shape_)
        return arr, Schema(int(np.prod(arr.shape[1:])), None, ("float32",))

    # ---------------------------------------------------------------- hooks of DeepDetector
    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        self.image_shape_ = tuple(int(v) for v in X.shape[1:])
        self.device_ = resolve_device(self.device)
        for attr in ("net_", "history_"):
            if hasattr(self, attr):
                delattr(self, attr)
        self.scaler_ = ChannelScaler.fit(X)
        self._train(X, rng, callback)
        self._after_train(X, rng)
        trim = self._trim_fraction()
        if trim > 0:
            # robust training, second round (as in DeepDetector): leave out the images the first model scores
            # in the top `trim` share and train a fresh model on the rest
            scores = self._score(X)
            keep = scores <= np.quantile(scores, 1.0 - trim)
            del self.net_
            self.scaler_ = ChannelScaler.fit(X[keep])
            self._train(X[keep], rng, callback)
            self._after_train(X[keep], rng)

    def _after_train(self, X: np.ndarray, rng: np.random.Generator) -> None:
        """Learn what scoring needs besides the network, from the training images ``X`` (default: nothing)."""

    def _update(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        super()._update(X, rng, callback)
        self._after_train(X, rng)

    def _score_batch_size(self) -> int:
        return max(1, SCORE_PIXELS // int(np.prod(self.image_shape_)))

    def _standardised(self, fn: Any) -> Any:
        mean = torch.from_numpy(self.scaler_.mean).to(self.device_).view(1, -1, 1, 1)
        scale = torch.from_numpy(self.scaler_.scale).to(self.device_).view(1, -1, 1, 1)
        net = self.net_.eval()

        def run(xb: torch.Tensor) -> torch.Tensor:
            return fn(net, (xb - mean) / scale)

        return run

    def _score(self, X: np.ndarray) -> np.ndarray:
        return batched(self._standardised(self._row_score), X, device=self.device_, batch_size=self._score_batch_size())

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        return self._maps(X, per_channel=True)

    def _row_pixel_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        """Non-negative per-pixel, per-channel parts of the score, (batch, C, H, W), before smoothing."""
        raise NotImplementedError

    def _map_sigma(self) -> float:
        """Gaussian smoothing (pixels) applied to :meth:`_row_pixel_scores` for the maps."""
        return float(self.smoothing)

    def _maps(self, X: np.ndarray, *, per_channel: bool) -> np.ndarray:
        sigma = self._map_sigma()

        def fn(net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
            maps = gaussian_blur(self._row_pixel_scores(net, xb), sigma)
            return maps if per_channel else maps.sum(dim=1)

        return batched(self._standardised(fn), X, device=self.device_, batch_size=self._score_batch_size())

    # ---------------------------------------------------------------- per-pixel outputs
    def _at_input_size(self, X: Any, *, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self)
        raw = self._images(X, fitting=False)
        arr = self._resize(raw)
        check_image_shape(arr.shape[1:], self.image_shape_)
        maps = self._maps(arr, per_channel=per_channel)
        if maps.shape[-2:] != raw.shape[-2:]:
            t = torch.from_numpy(maps if per_channel else maps[:, None])
            t = F.interpolate(t, size=raw.shape[-2:], mode="bilinear", align_corners=False)
            maps = (t if per_channel else t[:, 0]).numpy()
        return np.clip(maps, 0.0, None), raw

    def anomaly_map(self, X: Any) -> np.ndarray:
        """Per-pixel anomaly map of each image, (n, H, W) float64 at the input's size; higher = more anomalous.

        Maps share one scale across images (pixel ROC-AUC over a test set uses them as they are).
        """
        return self._at_input_size(X, per_channel=False)[0]

    def explain(self, X: Any) -> np.ndarray:
        """Each pixel's (and channel's) share of each image's anomaly, (n, C * H * W); rows sum to 1.

        Pixels are in the input's own size and channel-first order; reshape to (n, C, H, W) to view them.
        """
        return normalise_shares(self._at_input_size(X, per_channel=True)[0])

    # ---------------------------------------------------------------- state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        return {**meta, "image_shape": list(self.image_shape_), "layout": self.layout_}, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.image_shape_ = tuple(int(v) for v in meta["image_shape"])
        self.layout_ = str(meta["layout"])
        self.device_ = resolve_device(self.device)
        self.scaler_ = ChannelScaler.from_dict(meta["scaler"])
        self.history_ = meta.get("history", [])
        net = self._build(self.image_shape_[0])
        state = {k.removeprefix("net."): torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("net.")}
        net.load_state_dict(state, strict=True)
        self.net_ = net.to(self.device_).eval()
