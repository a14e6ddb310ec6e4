"""Nearest-neighbour distance on images: an image is as anomalous as it is far from the normal training images
it is closest to, in two views: the pixels after a light Gaussian blur (so that a shift of an edge by a pixel
costs little) and histograms of gradient orientation (local shape, whatever the brightness). Each view's
distance is put on the scale of normal images (median and IQR of the training images' leave-one-out
distances) and the two are averaged.

No network and no training: the training images (in both views) are the model. The map of an image is the
squared difference per pixel between it and the mean of its nearest normal images in the pixel view.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from .._core import check_is_fitted
from .._core.params import interval, options
from ..nn import gaussian_blur
from ..nn.orientation import orientation_histograms
from .base import BaseDetector, normalise_shares
from .image import IMAGE_RULES, MAP_SCALE_IMAGES, ImageDetector
from .registry import register
from .scaling import ChannelScaler

#: Query images compared with the whole reference set at once (bounds the distance matrix's memory).
_CHUNK = 512
#: Reference images whose leave-one-out distances give each view's normal scale.
_SCALE_ROWS = 1000


def nearest(
    reference: np.ndarray, queries: np.ndarray, k: int, *, skip: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Squared Euclidean distances (sorted) and indices of each query row's ``k`` nearest reference rows.

    ``skip[i]`` (optional) is a reference row that query ``i`` must not match (itself: leave-one-out).

    float32 matrix products (the rows are blurred pixels in a few standard deviations: no cancellation that
    float32 cannot carry), ``_CHUNK`` queries at a time.
    """
    ref = torch.from_numpy(reference)
    ref_sq = (ref * ref).sum(dim=1)
    dist = np.empty((queries.shape[0], k), dtype=np.float64)
    index = np.empty((queries.shape[0], k), dtype=np.int64)
    with torch.inference_mode():
        for s in range(0, queries.shape[0], _CHUNK):
            q = torch.from_numpy(queries[s : s + _CHUNK])
            d2 = ((q * q).sum(dim=1, keepdim=True) + ref_sq[None, :] - 2.0 * (q @ ref.T)).clamp_min_(0.0)
            if skip is not None:
                d2[torch.arange(q.shape[0]), torch.from_numpy(skip[s : s + _CHUNK])] = torch.inf
            values, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
            dist[s : s + _CHUNK] = values.double().numpy()
            index[s : s + _CHUNK] = idx.numpy()
    return dist, index


@register("image-knn")
class ImageKNN(BaseDetector):
    """k-nearest-neighbour distance between images, in blurred pixels and in gradient-orientation histograms;
    no training, strong on small gray images.

    Parameters
    ----------
    n_neighbors : int
        How many nearest normal images a score looks at (fewer when the reference set is smaller).
    method : {"mean", "largest"}
        Score = the mean Euclidean distance to the ``n_neighbors`` nearest images (default) or the distance
        to the ``n_neighbors``-th.
    smoothing : float
        Standard deviation in pixels of the Gaussian applied to every image before pixel distances (0: none).
    gradients : bool
        Add the view of gradient-orientation histograms (8 signed orientations in cells of 4 x 4 pixels
        overlapping by half; :func:`anomalia.nn.orientation.orientation_histograms`). False: pixels only.
    max_reference : int
        Training images kept as the reference set at most (a seeded sample beyond it); it bounds memory and
        scoring time, since every scored image is compared with every reference image.
    layout, image_size
        As for :class:`ConvAutoEncoder`.
    contamination, threshold, calibration_fraction, keep_rows, random_state
        As for :class:`anomalia.AutoEncoder`.

    The reference set *is* the model: a saved model holds up to ``max_reference`` blurred, standardised
    training images (``reference_``) and their orientation histograms (``gradient_reference_``) in its
    weights file. ``view_scales_`` holds each view's (median, IQR) of normal distances.
    """

    input_ndim: ClassVar[int] = 4
    input_kind: ClassVar[str] = "images"
    parameter_rules = {
        **IMAGE_RULES,
        "n_neighbors": [interval(1, None, integer=True)],
        "method": [options("mean", "largest")],
        "max_reference": [interval(2, None, integer=True)],
        "gradients": [options(True, False)],
    }
    test_params = {"n_neighbors": 3}

    n_neighbors: int = 5
    method: str = "mean"
    smoothing: float = 1.0
    gradients: bool = True
    max_reference: int = 20_000
    layout: str = "auto"
    image_size: tuple[int, int] | None = None

    _contract_data = ImageDetector._contract_data
    _images = ImageDetector._images
    _resize = ImageDetector._resize
    _at_input_size = ImageDetector._at_input_size  # maps at the input size, and the images read
    _validate = ImageDetector._validate

    def _features(self, X: np.ndarray) -> np.ndarray:
        """Standardised, blurred images as float32 rows (n, C * H * W)."""
        z = torch.from_numpy(self.scaler_.transform(X))
        return gaussian_blur(z, float(self.smoothing)).reshape(X.shape[0], -1).numpy()

    def _views(self, X: np.ndarray) -> list[np.ndarray]:
        """The rows of every view: blurred pixels, then (with ``gradients``) orientation histograms."""
        views = [self._features(X)]
        if self.gradients:
            views.append(orientation_histograms(torch.from_numpy(X)).numpy())
        return views

    # ---------------------------------------------------------------- fit and score
    def fit(self, X: Any, y: Any = None, *, callback: Any = None) -> ImageKNN:
        """Keep the normal images ``X`` as the reference set (see :meth:`BaseDetector.fit`)."""
        super().fit(X, callback=callback)
        maps = self._maps(self.calibration_rows_[:MAP_SCALE_IMAGES], per_channel=False)
        self.map_scale_ = float(np.quantile(maps, 0.99)) if maps.size else 1.0
        return self

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        self.image_shape_ = tuple(int(v) for v in X.shape[1:])
        self.scaler_ = ChannelScaler.fit(X)
        rows = X if X.shape[0] <= self.max_reference else X[np.sort(rng.choice(X.shape[0], self.max_reference, False))]
        views = self._views(rows)
        self.reference_ = np.ascontiguousarray(views[0])
        self.gradient_reference_ = np.ascontiguousarray(views[1]) if self.gradients else None
        # each view's scale on normal images: its leave-one-out distances on a sample of the reference rows
        self.view_scales_ = np.array([[0.0, 1.0]] * len(views))
        if len(views) > 1:
            k = max(1, min(self.n_neighbors, rows.shape[0] - 1))
            take = np.sort(rng.choice(rows.shape[0], min(_SCALE_ROWS, rows.shape[0]), replace=False))
            for v, ref in enumerate(views):
                d = self._reduce(np.sqrt(nearest(ref, ref[take], k, skip=take)[0]))
                iqr = float(np.subtract(*np.percentile(d, [75, 25])))
                self.view_scales_[v] = (float(np.median(d)), iqr if iqr > 0 else max(float(np.std(d)), 1e-12))

    def _k(self) -> int:
        return max(1, min(self.n_neighbors, self.reference_.shape[0]))

    def _reduce(self, dist: np.ndarray) -> np.ndarray:
        return dist[:, -1] if self.method == "largest" else dist.mean(axis=1)

    def _references(self) -> list[np.ndarray]:
        return [self.reference_] + ([self.gradient_reference_] if self.gradient_reference_ is not None else [])

    def view_scores(self, X: np.ndarray) -> np.ndarray:
        """Each view's kNN distance on the normal scale, shape (n, views), for checked images ``X``."""
        k = self._k()
        views = zip(self._references(), self._views(X), strict=True)
        cols = [self._reduce(np.sqrt(nearest(ref, q, k)[0])) for ref, q in views]
        return (np.column_stack(cols) - self.view_scales_[:, 0]) / self.view_scales_[:, 1]

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.view_scores(X).mean(axis=1)

    # ---------------------------------------------------------------- per-pixel outputs
    def _maps(self, X: np.ndarray, *, per_channel: bool) -> np.ndarray:
        q = self._features(X)
        _, idx = nearest(self.reference_, q, self._k())
        sq = (q - self.reference_[idx].mean(axis=1)) ** 2
        maps = sq.reshape(X.shape[0], *self.image_shape_).astype(np.float64)
        return maps if per_channel else maps.sum(axis=1)

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        return self._maps(X, per_channel=True).reshape(X.shape[0], -1)

    def anomaly_map(self, X: Any) -> np.ndarray:
        """Per-pixel anomaly map of each image, (n, H, W) float64 at the input's size: the squared difference
        to the mean of the nearest normal images (blurred), summed over channels; one scale across images."""
        return self._at_input_size(X, per_channel=False)[0]

    def explain(self, X: Any) -> np.ndarray:
        """Each pixel's (and channel's) share of each image's anomaly, (n, C * H * W); rows sum to 1."""
        return normalise_shares(self._at_input_size(X, per_channel=True)[0].reshape(np.shape(X)[0], -1))

    def heat_scale(self) -> float:
        """The map value drawn at full colour in heatmaps (``map_scale_``)."""
        check_is_fitted(self)
        return float(self.map_scale_)

    # ---------------------------------------------------------------- state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"].update(
            scaler=self.scaler_.to_dict(),
            image_shape=list(self.image_shape_),
            layout=self.layout_,
            map_scale=self.map_scale_,
            view_scales=self.view_scales_.tolist(),
        )
        arrays = {**arrays, "reference": self.reference_}
        if self.gradient_reference_ is not None:
            arrays["gradient_reference"] = self.gradient_reference_
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        state = meta["state"]
        self.scaler_ = ChannelScaler.from_dict(state["scaler"])
        self.image_shape_ = tuple(int(v) for v in state["image_shape"])
        self.layout_ = str(state["layout"])
        self.map_scale_ = float(state["map_scale"])
        self.view_scales_ = np.asarray(state["view_scales"], dtype=np.float64)
        self.reference_ = np.ascontiguousarray(arrays["reference"], dtype=np.float32)
        grad = arrays.get("gradient_reference")
        self.gradient_reference_ = None if grad is None else np.ascontiguousarray(grad, dtype=np.float32)

