"""Pixel-level metrics for anomaly maps against ground-truth masks (MVTec AD style; 1 = anomalous pixel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import InputError


def _maps_and_masks(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(masks)
    a = np.asarray(maps, dtype=np.float64)
    if m.ndim == 2:
        m, a = m[None], a[None] if a.ndim == 2 else a
    if m.ndim != 3 or a.shape != m.shape:
        raise InputError(
            f"masks and maps must both be (n, H, W) with the same shape; got masks {m.shape} and maps {a.shape}. "
            "Compute maps at the masks' size (detector.anomaly_map of images of that size)"
        )
    if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
        raise InputError("masks must hold only 0/False (normal pixel) and 1/True (anomalous pixel)")
    if not np.isfinite(a).all():
        raise InputError("maps contain NaN or inf; pixel metrics need finite values")
    return m.astype(bool), a


def pixel_roc_auc(masks: Any, maps: Any) -> float:
    """ROC-AUC of every pixel's map value against its mask, over all images together.

    Parameters
    ----------
    masks : array-like of shape (n, H, W)
        Ground truth, True / 1 where a pixel is anomalous.
    maps : array-like of shape (n, H, W)
        Anomaly maps on one scale across images (e.g. ``detector.anomaly_map(X)``).
    """
    from sklearn import metrics as skm  # imported on first use: it slows every command's start

    m, a = _maps_and_masks(masks, maps)
    if m.all() or not m.any():
        raise InputError("pixel ROC-AUC needs both anomalous and normal pixels in the masks; got only one kind")
    return float(skm.roc_auc_score(m.ravel(), a.ravel()))


def per_region_overlap(masks: Any, maps: Any, *, max_fpr: float = 0.3, n_thresholds: int = 100) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr`` pixel false-positive rate, scaled to [0, 1].

    Each connected anomalous region counts equally, however large (Bergmann et al., MVTec AD 2021).
    """
    from scipy import ndimage

    m, a = _maps_and_masks(masks, maps)
    if not m.any() or m.all():
        raise InputError("per-region overlap needs both anomalous and normal pixels in the masks")
    regions = []
    for i in range(m.shape[0]):
        labels, k = ndimage.label(m[i])
        regions += [(i, labels == j) for j in range(1, k + 1)]
    normal = a[~m]
    levels = np.unique(np.quantile(a, np.linspace(0.0, 1.0, n_thresholds)))
    fprs, pros = [1.0], [1.0]  # threshold below every value: everything flagged
    for t in levels:
        fprs.append(float((normal > t).mean()))
        pros.append(float(np.mean([(a[i][r] > t).mean() for i, r in regions])))
    order = np.lexsort((pros, fprs))
    fpr, pro = np.asarray(fprs)[order], np.asarray(pros)[order]
    keep = fpr <= max_fpr
    x = np.r_[0.0, fpr[keep], max_fpr]
    y = np.r_[pro[keep][0] if keep.any() else 0.0, pro[keep], np.interp(max_fpr, fpr, pro)]
    return float(np.trapezoid(y, x) / max_fpr)
