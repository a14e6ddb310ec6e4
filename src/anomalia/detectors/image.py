"""What the image detectors share: image input (layouts, explicit resize), per-channel standardisation,
per-pixel anomaly maps and saving the image shape. Subclasses build their network and say how an image is
lost and scored, like every :class:`DeepDetector`; the image operations (blur, resize) live in
:mod:`anomalia.nn.images`."""

from __future__ import annotations

from dataclasses import KW_ONLY
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .._core import Schema, check_is_fitted
from .._core.images import LAYOUTS, as_image_array, check_image_fit_input, check_image_shape
from .._core.params import Rule, options
from ..nn import Scorer, batched, gaussian_blur, resize, resolve_device, upsample_maps
from .base import BaseDetector, Reduce, normalise_shares
from .deep import DeepDetector
from .scaling import ChannelScaler

#: Held-out images whose maps set ``map_scale_`` (the heatmaps' full-colour value).
MAP_SCALE_IMAGES = 256
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


class ImageDetector(DeepDetector):
    """Base of the image detectors.

    ``X`` is a batch of images: (n, H, W), (n, C, H, W) or (n, H, W, C) (``layout``), any numeric dtype
    (uint8 as read from files, or floats). Scores are one per image; :meth:`anomaly_map` gives a map per
    pixel and :meth:`explain` each pixel's (and channel's) share of the score, shape (n, C * H * W).
    """

    #: (n, C, H, W) after :meth:`_validate`.
    input_ndim: ClassVar[int] = 4
    input_kind: ClassVar[str] = "images"

    _: KW_ONLY
    layout: str = "auto"
    image_size: tuple[int, int] | None = None
    smoothing: float = 2.0
    epochs: int = 30
    batch_size: int = 64
    patience: int = 5

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
        return resize(torch.from_numpy(arr), tuple(self.image_size)).numpy()  # type: ignore[arg-type]

    def _validate(self, X: Any, *, fitting: bool, finite: bool = True) -> tuple[np.ndarray, Schema]:
        if not fitting:
            check_is_fitted(self)
        arr = self._resize(self._images(X, fitting=fitting))
        if not fitting:
            check_image_shape(arr.shape[1:], self.image_shape_)
        return arr, Schema(int(np.prod(arr.shape[1:])), None, ("float32",))

    def fit(self, X: Any, y: Any = None, *, callback: Any = None) -> ImageDetector:
        """Learn normal images from ``X`` (see :meth:`BaseDetector.fit`)."""
        super().fit(X, callback=callback)
        # 256 images give ~10^5 map pixels: their 99th percentile is as good as all the held-out images' and
        # costs a fraction of the fit (GEOM's maps need a backward pass)
        self.map_scale_ = self._map_scale(self.calibration_rows_[:MAP_SCALE_IMAGES])
        return self

    def _map_scale(self, images: np.ndarray) -> float:
        maps = self._maps(images, per_channel=False)
        return float(np.quantile(maps, 0.99)) if maps.size else 1.0

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

    def scoring_module(self, *, parts: bool = False) -> nn.Module:
        """The one module that scores images: standardise per channel -> network -> score per image.

        With ``parts=True`` it returns ``(scores, per-pixel parts)`` (the map before its smoothing).
        """
        check_is_fitted(self)
        return self._scorer(self._row_score, self._row_parts if parts else None)

    def _scorer(self, score: Any, parts: Any = None) -> Scorer:
        return Scorer(
            self.net_.eval(),
            torch.from_numpy(self.scaler_.mean).to(self.device_).view(1, -1, 1, 1),
            torch.from_numpy(self.scaler_.scale).to(self.device_).view(1, -1, 1, 1),
            score,
            parts,
            flatten=False,
        )

    def _row_parts(self, net: nn.Module, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._row_score(net, xb), self._row_pixel_scores(net, xb)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return batched(self.scoring_module(), X, device=self.device_, batch_size=self._score_batch_size())

    def _score_parts(
        self, X: np.ndarray, above: float | None, reduce: Reduce | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return BaseDetector._score_parts(self, X, above, reduce)  # the maps are smoothed: a pass of their own

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

        def maps(net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
            m = gaussian_blur(self._row_pixel_scores(net, xb), sigma)
            return m if per_channel else m.sum(dim=1)

        # the same standardisation and network as the score, a map per image instead of a number
        return batched(self._scorer(maps), X, device=self.device_, batch_size=self._score_batch_size())

    # ---------------------------------------------------------------- per-pixel outputs
    def _at_input_size(self, X: Any, *, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self)
        raw = self._images(X, fitting=False)
        arr = self._resize(raw)
        check_image_shape(arr.shape[1:], self.image_shape_)
        maps = self._maps(arr, per_channel=per_channel)
        if maps.shape[-2:] != raw.shape[-2:]:
            t = upsample_maps(torch.from_numpy(maps if per_channel else maps[:, None]), raw.shape[-2:])
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
        meta["state"].update(image_shape=list(self.image_shape_), layout=self.layout_, map_scale=self.map_scale_)
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        state = meta["state"]
        self.image_shape_ = tuple(int(v) for v in state["image_shape"])
        self.layout_ = str(state["layout"])
        super()._set_state(meta, arrays)
        self.map_scale_ = state.get("map_scale")

    def heat_scale(self) -> float:
        """The map value drawn at full colour in heatmaps (``map_scale_``; 0.1 models: from their rows)."""
        check_is_fitted(self)
        if self.map_scale_ is None:
            rows = getattr(self, "calibration_rows_", None)
            self.map_scale_ = 1.0 if rows is None else self._map_scale(rows)
        return float(self.map_scale_)

    def _scaler_type(self) -> Any:
        return ChannelScaler

    def _build_size(self) -> int:
        return self.image_shape_[0]
