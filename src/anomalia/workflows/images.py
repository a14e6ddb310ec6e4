"""Image folders: fit on ``train/good``, score a folder (CSV + heatmap overlays), evaluate against labels
and pixel masks. The image counterparts of ``fit_file`` / ``score_file`` / ``evaluate_file``.

The reading options (size, gray or RGB) are saved beside the model as ``images.json``, so scoring reads
new images the way the training images were read.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._core import BundleError, InputError
from ..bundle import load
from ..data.images import IMAGE_SUFFIXES, NORMAL_KIND, read_image_folder, read_images
from ..detectors import make_detector
from ..detectors.image import ImageDetector
from ..metrics import evaluate as point_metrics
from ..metrics.pixel import per_region_overlap, pixel_roc_auc
from .evaluate import Evaluation, operating_points
from .fit import parse_params

IMAGE_SETTINGS = "images.json"
#: Images shown with their heatmaps in the report.
TOP_IMAGES = 8


@dataclass
class ImageFitResult:
    """What an image fit did."""

    path: Path
    data: str
    detector: str
    n_images: int
    n_train: int
    n_calibration: int
    image_shape: tuple[int, ...]
    threshold: str
    threshold_value: float | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return sum(len(h.get("train_loss", [])) for h in self.history)


def is_image_data(path: str | Path) -> bool:
    """True for a folder (image folders are the only folders the workflows read) or an image file."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES


def fit_image_folder(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "conv-autoencoder",
    params: Iterable[str] | Mapping[str, Any] | None = None,
    size: Sequence[int] | None = None,
    mode: str | None = None,
    threshold: str | None = None,
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> ImageFitResult:
    """Fit an image detector on ``data/train/good`` (MVTec AD layout) and save it to ``out``.

    ``size=(height, width)`` resizes every image when reading; ``mode`` is ``"L"`` (gray) or ``"RGB"``.
    """
    start = time.perf_counter()
    kwargs = parse_params(model, params)
    kwargs.setdefault("random_state", seed)
    if threshold is not None:
        kwargs["threshold"] = threshold
    detector = make_detector(model, **kwargs)
    if not isinstance(detector, ImageDetector):
        raise InputError(
            f"{data} is an image folder but {model!r} is not an image detector; use --model conv-autoencoder or geom"
        )
    folder = read_image_folder(data, size=size, mode=mode, test=False)
    detector.fit(folder.train, callback=callback)
    path = detector.save(out)
    read_mode = "L" if folder.train.shape[1] == 1 else "RGB"
    settings = {"size": list(folder.train.shape[2:]), "mode": read_mode}
    (path / IMAGE_SETTINGS).write_text(json.dumps(settings))
    thr = detector.threshold_
    return ImageFitResult(
        path=path,
        data=str(data),
        detector=model,
        n_images=folder.train.shape[0],
        n_train=detector.n_train_rows_,
        n_calibration=int(detector.calibration_scores_.size),
        image_shape=tuple(folder.train.shape[1:]),
        threshold=detector._threshold_spec().spec,
        threshold_value=None if thr is None else float(thr.threshold_),
        seconds=time.perf_counter() - start,
        history=list(getattr(detector, "history_", [])),
    )


def load_image_model(path: str | Path) -> tuple[ImageDetector, dict[str, Any]]:
    """A saved image detector and its reading options."""
    det = load(path)
    if not isinstance(det, ImageDetector):
        raise BundleError(f"{path} holds a {det.name} model, which does not score images")
    settings_file = Path(path) / IMAGE_SETTINGS
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    if not settings:
        c, h, w = det.image_shape_
        settings = {"size": [h, w], "mode": "L" if c == 1 else "RGB"}
    return det, settings


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


@dataclass
class ImageScoreResult:
    data: str
    out: Path
    n_images: int
    n_flagged: int
    seconds: float
    threshold: str
    heatmaps: Path | None = None

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


def _heat_scale(det: ImageDetector) -> float:
    """Map value drawn at full colour: the 99th percentile of the pixels of the calibration images' maps."""
    rows = det.calibration_rows_
    maps = det._maps(rows, per_channel=False)
    return float(np.quantile(maps, 0.99)) if maps.size else 1.0


def score_images(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    heatmaps: str | Path | None = None,
    batch_images: int = 256,
) -> ImageScoreResult:
    """Score images with a saved image model; write a CSV (``path, score, p_value, is_anomaly``).

    With ``heatmaps``, also write one PNG per image into that folder: the image with its anomaly map over it
    (``<relative path with / as __>.png``), all on the scale of the normal calibration images.
    """
    start = time.perf_counter()
    det, settings = load_image_model(model)
    files = image_files(data)
    base = Path(data) if Path(data).is_dir() else Path(data).parent
    out_path = Path(out)
    if not out_path.parent.exists():
        raise InputError(f"cannot write {out_path}: the folder {out_path.parent} does not exist")
    heat_dir = None if heatmaps is None else Path(heatmaps)
    vmax = 1.0
    if heat_dir is not None:
        heat_dir.mkdir(parents=True, exist_ok=True)
        vmax = _heat_scale(det)
    thr = det._fitted_threshold()
    n_flagged = 0
    with out_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "score", "p_value", "is_anomaly"])
        for i in range(0, len(files), batch_images):
            chunk = files[i : i + batch_images]
            X = read_images(chunk, size=settings["size"], mode=settings["mode"])
            scores = det.anomaly_score(X)
            p = det.p_value(X)
            flags = thr.predict(scores)
            n_flagged += int(flags.sum())
            for f, s, pv, fl in zip(chunk, scores, p, flags, strict=True):
                writer.writerow([str(f), repr(float(s)), repr(float(pv)), bool(fl)])
            if heat_dir is not None:
                maps = det.anomaly_map(X)
                for f, img, amap in zip(chunk, X, maps, strict=True):
                    rel = f.relative_to(base) if f.is_relative_to(base) else Path(f.name)
                    name = "__".join(rel.with_suffix("").parts) + ".png"
                    (heat_dir / name).write_bytes(png_bytes(heatmap_overlay(img, amap, vmax)))
    return ImageScoreResult(str(data), out_path, len(files), n_flagged, time.perf_counter() - start, thr.spec, heat_dir)


@dataclass
class ImageView:
    """One image of the report: where it is, its score and label, and its heatmap overlay (PNG data URI)."""

    path: str
    kind: str
    score: float
    label: int | None
    flagged: bool
    overlay: str


def evaluate_image_folder(
    model: str | Path,
    data: str | Path,
    *,
    top_n: int = TOP_IMAGES,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
) -> Evaluation:
    """Score the ``test/`` images of an MVTec-layout folder and measure them against their labels (and
    masks: pixel ROC-AUC and per-region overlap). The report shows the ``top_n`` highest-scored images with
    their heatmaps under ``extras["images"]``."""
    start = time.perf_counter()
    det, settings = load_image_model(model)
    folder = read_image_folder(data, size=settings["size"], mode=settings["mode"])
    if folder.test is None or folder.test_labels is None:
        raise InputError(f"{data} has no test/ images to evaluate (expected test/good/ and test/<kind>/ folders)")
    X, y = folder.test, folder.test_labels
    scores = det.anomaly_score(X)
    thr = det._fitted_threshold()
    flags = thr.predict(scores)
    labelled = 0 < int(y.sum()) < y.size
    metrics = point_metrics(y, scores, flags) if labelled else {"n": float(y.size), "flagged": float(flags.sum())}
    maps = None
    if folder.masks is not None and folder.masks.any():
        maps = det.anomaly_map(X)
        metrics["pixel_roc_auc"] = pixel_roc_auc(folder.masks, maps)
        metrics["per_region_overlap"] = per_region_overlap(folder.masks, maps)
    top = np.argsort(-scores, kind="stable")[:top_n]
    top_maps = maps[top] if maps is not None else det.anomaly_map(X[top])
    vmax = _heat_scale(det)
    views = [
        ImageView(
            path=str(folder.test_paths[i]),
            kind=folder.test_kinds[i],
            score=float(scores[i]),
            label=int(y[i]),
            flagged=bool(flags[i]),
            overlay="data:image/png;base64,"
            + base64.b64encode(png_bytes(enlarged(heatmap_overlay(X[i], amap, vmax)))).decode("ascii"),
        )
        for i, amap in zip(top, top_maps, strict=True)
    ]
    kind_of = np.asarray(folder.test_kinds)
    kinds = {str(k): float(scores[kind_of == k].mean()) for k in np.unique(kind_of)}
    return Evaluation(
        title=f"{det.name} on {Path(data).name}",
        data=str(data),
        detector=det.name,
        params={k: v for k, v in det.get_params(deep=False).items() if not hasattr(v, "spec")},
        threshold=thr.spec,
        threshold_value=float(thr.threshold_),
        scores=scores,
        flags=flags,
        labels=y,
        calibration_scores=np.asarray(det.calibration_scores_),
        metrics=metrics,
        operating_points=operating_points(scores, y, thr, target_precision, target_recall),
        top_rows=[],
        history=list(getattr(det, "history_", [])),
        feature_names=[],
        seconds=time.perf_counter() - start,
        target_precision=target_precision,
        target_recall=target_recall,
        extras={"images": {"top": views, "mean_score_by_kind": kinds, "normal_kind": NORMAL_KIND}},
    )


__all__ = [
    "IMAGE_SETTINGS",
    "ImageFitResult",
    "ImageScoreResult",
    "ImageView",
    "evaluate_image_folder",
    "fit_image_folder",
    "heatmap_overlay",
    "image_files",
    "is_image_data",
    "load_image_model",
    "score_images",
]
