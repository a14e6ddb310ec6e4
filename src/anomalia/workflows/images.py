"""Image folders: fit on ``train/good``, score a folder (CSV + heatmap overlays), evaluate against labels
and pixel masks. The image counterparts of ``fit_file`` / ``score_file`` / ``evaluate_file``.

The reading options (size, gray or RGB: an :class:`~anomalia.data.ImageReading`) are the model's
preprocessing, saved in its manifest, so scoring reads new images the way the training images were read.
"""

from __future__ import annotations

import base64
import csv
import io
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputError
from ..data import IMAGE_SUFFIXES, ImageReading, read_image_folder
from ..data.images import NORMAL_KIND
from ..metrics.pixel import per_region_overlap, pixel_roc_auc
from ..model import Model
from ..results import Evaluation, ImagesView, ImageView, ScoredRows
from .evaluate import build_evaluation
from .fit import FitResult, fit_labelled_threshold, make_fit_detector
from .score import ScoreResult

#: Images shown with their heatmaps in the report.
TOP_IMAGES = 8


def fit_image_folder(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "conv-autoencoder",
    params: Iterable[str] | Mapping[str, Any] | None = None,
    size: Sequence[int] | None = None,
    mode: str | None = None,
    threshold: str | None = None,
    contaminated: bool = False,
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> FitResult:
    """Fit an image detector on ``data/train/good`` (MVTec AD layout) and save it to ``out``.

    ``size=(height, width)`` resizes every image when reading; ``mode`` is ``"L"`` (gray) or ``"RGB"``.
    """
    start = time.perf_counter()
    detector = make_fit_detector(model, params, threshold=threshold, seed=seed, contaminated=contaminated)
    if detector.input_kind != "images":
        raise InputError(
            f"{data} is an image folder but {model!r} is not an image detector; use --model conv-autoencoder or geom"
        )
    rule = detector.threshold_rule()
    folder = read_image_folder(data, size=size, mode=mode, test=rule.needs_labels)
    n_anomalies = 0
    if rule.needs_labels:
        labels = folder.test_labels
        if folder.test is None or labels is None or not labels.any():
            raise InputError(
                f"threshold '{rule.spec}' is fitted on labelled anomalous images, but {Path(data) / 'test'} holds "
                "no test/<defect>/ images; add some, or use 'false-alarm:ALPHA'"
            )
    detector.fit(folder.train, callback=callback)
    if rule.needs_labels:
        assert folder.test is not None and folder.test_labels is not None
        anomalous = folder.test[folder.test_labels == 1]
        n_anomalies = int(anomalous.shape[0])
        n_normal = int((folder.test_labels == 0).sum())
        fit_labelled_threshold(detector, n_normal, detector.anomaly_score(anomalous))
    fitted = Model(detector, ImageReading.of(folder.train), name=Path(out).name)
    fitted.save(out)
    return FitResult.of(
        fitted,
        data=data,
        n_rows=int(folder.train.shape[0]),
        seconds=time.perf_counter() - start,
        image_shape=tuple(int(v) for v in folder.train.shape[1:]),
        n_threshold_anomalies=n_anomalies,
    )


def image_files(data: str | Path) -> list[Path]:
    """The images to score: an image file, the ``test/`` images of an MVTec folder, or every image under a folder."""
    p = Path(data)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError(f"{p} is neither an image file nor a folder")
    root = p / "test" if (p / "test").is_dir() and (p / "train").is_dir() else p
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def heatmap_overlay(image: np.ndarray, amap: np.ndarray, vmax: float, alpha: float = 0.5) -> np.ndarray:
    """An RGB uint8 (H, W, 3) picture: the image in gray with the anomaly map blended over it (inferno).

    ``vmax`` is the map value drawn at full colour (one scale for every image of a run).
    """
    import matplotlib

    gray = image.astype(np.float32).mean(axis=0) if image.ndim == 3 else image.astype(np.float32)
    gray = np.repeat(gray[..., None] / 255.0, 3, axis=2)
    heat = matplotlib.colormaps["inferno"](np.clip(amap / max(vmax, 1e-12), 0.0, 1.0))[..., :3]
    return (255 * np.clip((1 - alpha) * gray + alpha * heat, 0.0, 1.0)).astype(np.uint8)


def enlarged(rgb: np.ndarray, min_side: int = 160) -> np.ndarray:
    """``rgb`` repeated pixel by pixel so that its shorter side is at least ``min_side`` (for display)."""
    k = max(1, -(-min_side // min(rgb.shape[:2])))
    return rgb if k == 1 else np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def score_images(
    model: str | Path | Model,
    data: str | Path,
    out: str | Path,
    *,
    heatmaps: str | Path | None = None,
    batch_images: int = 256,
    on_batch: Callable[[ScoredRows, Any], None] | None = None,
) -> ScoreResult:
    """Score images with a saved image model; write a CSV (``path, score, p_value, is_anomaly``).

    With ``heatmaps``, also write one PNG per image into that folder: the image with its anomaly map over it
    (``<relative path with / as __>.png``), all on the scale of the normal calibration images.
    """
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind != "images":
        raise InputError(f"{model} holds a {m.detector.name} model, which does not score images")
    files = image_files(data)
    base = Path(data) if Path(data).is_dir() else Path(data).parent
    out_path = Path(out)
    if not out_path.parent.exists():
        raise InputError(f"cannot write {out_path}: the folder {out_path.parent} does not exist")
    heat_dir = None if heatmaps is None else Path(heatmaps)
    vmax = 1.0
    if heat_dir is not None:
        heat_dir.mkdir(parents=True, exist_ok=True)
        vmax = m.detector.heat_scale()  # type: ignore[attr-defined]
    n_flagged = 0
    with out_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "score", "p_value", "is_anomaly"])
        for i in range(0, len(files), batch_images):
            chunk = files[i : i + batch_images]
            X = m.image_reading.read(chunk)
            rows = m.score(X, maps=heat_dir is not None)
            if on_batch is not None:
                on_batch(rows if rows.paths is not None else replace(rows, paths=[str(f) for f in chunk]), None)
            n_flagged += rows.n_flagged
            for f, s, pv, fl in zip(chunk, rows.score, rows.p_value, rows.is_anomaly, strict=True):
                writer.writerow([str(f), repr(float(s)), repr(float(pv)), bool(fl)])
            if heat_dir is not None and rows.anomaly_map is not None:
                for f, img, amap in zip(chunk, X, rows.anomaly_map, strict=True):
                    rel = f.relative_to(base) if f.is_relative_to(base) else Path(f.name)
                    name = "__".join(rel.with_suffix("").parts) + ".png"
                    (heat_dir / name).write_bytes(png_bytes(heatmap_overlay(img, amap, vmax)))
    return ScoreResult(
        str(data),
        out_path,
        len(files),
        n_flagged,
        time.perf_counter() - start,
        m.detector.threshold_.spec,
        ["path", "score", "p_value", "is_anomaly"],
        kind="images",
        heatmaps=heat_dir,
    )


def evaluate_image_folder(
    model: str | Path | Model,
    data: str | Path,
    *,
    top_n: int = TOP_IMAGES,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
) -> Evaluation:
    """Score the ``test/`` images of an MVTec-layout folder and measure them against their labels (and
    masks: pixel ROC-AUC and per-region overlap). The report shows the ``top_n`` highest-scored images with
    their heatmaps (``images``)."""
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind != "images":
        raise InputError(f"{model} holds a {m.detector.name} model, which does not score images")
    det = m.detector
    reading = m.image_reading
    folder = read_image_folder(data, size=reading.size, mode=reading.mode)
    if folder.test is None or folder.test_labels is None:
        raise InputError(f"{data} has no test/ images to evaluate (expected test/good/ and test/<kind>/ folders)")
    X, y = folder.test, folder.test_labels
    with_masks = folder.masks is not None and folder.masks.any()
    rows = m.score(X, maps=with_masks)
    scores = rows.score
    labelled = 0 < int(y.sum()) < y.size
    ev = build_evaluation(
        m,
        title=f"{det.name} on {Path(data).name}",
        data=str(data),
        scores=scores,
        labels=y if labelled else None,
        top_rows=[],
        target_precision=target_precision,
        target_recall=target_recall,
        seconds=0.0,
    )
    ev.labels = y  # the report shows every image's kind, labelled or not
    maps = rows.anomaly_map
    if with_masks and maps is not None:
        ev.metrics["pixel_roc_auc"] = pixel_roc_auc(folder.masks, maps)
        ev.metrics["per_region_overlap"] = per_region_overlap(folder.masks, maps)
    top = np.argsort(-scores, kind="stable")[:top_n]
    top_maps = maps[top] if maps is not None else det.anomaly_map(X[top])  # type: ignore[attr-defined]
    vmax = det.heat_scale()  # type: ignore[attr-defined]
    views = [
        ImageView(
            path=str(folder.test_paths[i]),
            kind=folder.test_kinds[i],
            score=float(scores[i]),
            label=int(y[i]),
            flagged=bool(rows.is_anomaly[i]),
            p_value=float(rows.p_value[i]),
            overlay="data:image/png;base64,"
            + base64.b64encode(png_bytes(enlarged(heatmap_overlay(X[i], amap, vmax)))).decode("ascii"),
        )
        for i, amap in zip(top, top_maps, strict=True)
    ]
    kind_of = np.asarray(folder.test_kinds)
    kinds = {str(k): float(scores[kind_of == k].mean()) for k in np.unique(kind_of)}
    ev.images = ImagesView(views, kinds, NORMAL_KIND)
    ev.seconds = time.perf_counter() - start
    return ev


__all__ = [
    "TOP_IMAGES",
    "enlarged",
    "evaluate_image_folder",
    "fit_image_folder",
    "heatmap_overlay",
    "image_files",
    "png_bytes",
    "score_images",
]
