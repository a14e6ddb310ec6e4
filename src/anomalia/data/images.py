"""Reading images: files and MVTec-AD-layout folders, with Pillow.

A folder in the MVTec AD layout::

    root/train/good/*.png                 normal images to fit on
    root/test/good/*.png                  normal test images
    root/test/<kind>/*.png                anomalous test images, one folder per kind of defect
    root/ground_truth/<kind>/<stem>_mask.png   optional pixel masks of the anomalous test images

Images come back as uint8 arrays of shape (n, C, H, W) (channels first, the layout the image detectors
take); masks as bool (n, H, W). Every image of a set must have the same size unless ``size=(H, W)`` asks
for an explicit resize.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._core import InputError

#: File endings read as images (lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Pillow modes an image is converted to: gray or RGB.
MODES = ("L", "RGB")
NORMAL_KIND = "good"


def _pil():  # type: ignore[no-untyped-def]
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a core dependency
        raise ImportError("reading images needs Pillow: pip install pillow") from None
    return Image, UnidentifiedImageError


def _check_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise InputError(f"size must be None or (height, width) with two positive ints; got {size!r}")
    return int(size[0]), int(size[1])


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"{path} is not a folder of images")
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_mode(path: str | Path) -> str:
    """``"L"`` for a grayscale image file, ``"RGB"`` otherwise (the mode the readers convert it to)."""
    Image, Unidentified = _pil()
    try:
        with Image.open(path) as im:
            return "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
    except (OSError, Unidentified) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None


def _read_one(path: Path, mode: str, size: tuple[int, int] | None, *, resample: int | None = None) -> np.ndarray:
    Image, Unidentified = _pil()
    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), resample=Image.Resampling.BILINEAR if resample is None else resample)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, Unidentified, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {exc}. Remove or replace the file") from None


def read_images(
    paths: Sequence[str | Path], *, size: Sequence[int] | None = None, mode: str | None = None
) -> np.ndarray:
    """Read image files into one uint8 array of shape (n, C, H, W).

    Parameters
    ----------
    paths : sequence of paths
        Image files (anything Pillow reads).
    size : (height, width), optional
        Resize every image to this size (bilinear). Without it all images must have the same size.
    mode : {"L", "RGB"}, optional
        Convert to gray (C = 1) or RGB (C = 3); default: the mode of the first image.
    """
    size_ = _check_size(size)
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no image files to read (the list of paths is empty)")
    if mode is not None and mode not in MODES:
        raise InputError(f"mode must be one of {list(MODES)} or None; got {mode!r}")
    mode_ = mode or image_mode(files[0])
    first = _read_one(files[0], mode_, size_)
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    out[0] = first
    for i, f in enumerate(files[1:], start=1):
        img = _read_one(f, mode_, size_)
        if img.shape != first.shape:
            raise InputError(
                f"image {f} is {img.shape[1]}x{img.shape[0]} pixels but {files[0]} is {first.shape[1]}x"
                f"{first.shape[0]}; all images must have one size: pass size=(height, width) to resize them"
            )
        out[i] = img
    return out[:, None] if out.ndim == 3 else np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def read_masks(paths: Sequence[str | Path], *, size: Sequence[int] | None = None) -> np.ndarray:
    """Read mask images into a bool array (n, H, W): True where a pixel is anomalous (non-zero)."""
    Image, _ = _pil()
    size_ = _check_size(size)
    masks = [_read_one(Path(p), "L", size_, resample=Image.Resampling.NEAREST) > 0 for p in paths]
    if not masks:
        return np.zeros((0, 0, 0), dtype=bool)
    shapes = {m.shape for m in masks}
    if len(shapes) > 1:
        raise InputError(f"masks have different sizes {sorted(shapes)}; pass size=(height, width) to resize them")
    return np.stack(masks)


@dataclass
class ImageFolder:
    """The images of an MVTec-AD-layout folder (see the module docstring).

    ``test_labels`` is 1 for anomalous test images (any kind but ``good``) and 0 for normal ones; ``masks``
    (bool, (n_test, H, W)) is None when the folder has no ``ground_truth``; normal images get empty masks.
    """

    root: Path
    train: np.ndarray
    train_paths: list[Path]
    test: np.ndarray | None = None
    test_paths: list[Path] = field(default_factory=list)
    test_kinds: list[str] = field(default_factory=list)
    test_labels: np.ndarray | None = None
    masks: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.train.shape[1:])  # type: ignore[return-value]


def is_image_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder in the MVTec AD layout (it has ``train/good/``): its layout, not merely
    being a folder (a partitioned Parquet dataset is a folder too)."""
    return (Path(path) / "train" / NORMAL_KIND).is_dir()


def _mask_path(root: Path, kind: str, image: Path) -> Path | None:
    folder = root / "ground_truth" / kind
    for candidate in (f"{image.stem}_mask{image.suffix}", f"{image.stem}_mask.png", image.name, f"{image.stem}.png"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def read_image_folder(
    root: str | Path, *, size: Sequence[int] | None = None, mode: str | None = None, test: bool = True
) -> ImageFolder:
    """Read an MVTec-AD-layout folder: ``train/good`` and, when present and ``test``, ``test/<kind>``.

    Parameters
    ----------
    root : path
        The folder holding ``train/`` (and ``test/``, ``ground_truth/``).
    size : (height, width), optional
        Resize every image (and mask) to this size; without it all images must have the same size.
    mode : {"L", "RGB"}, optional
        Gray or RGB; default: the mode of the first training image.
    test : bool
        Also read ``test/`` and ``ground_truth/`` when they exist.
    """
    base = Path(root)
    train_dir = base / "train" / NORMAL_KIND
    if not train_dir.is_dir():
        raise InputError(
            f"{base} is not an image folder in the MVTec AD layout: {train_dir} is missing "
            "(expected train/good/ with normal images, and optionally test/<kind>/ and ground_truth/<kind>/)"
        )
    train_paths = list_images(train_dir)
    if not train_paths:
        raise InputError(f"{train_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    mode_ = mode or image_mode(train_paths[0])
    train = read_images(train_paths, size=size, mode=mode_)
    out = ImageFolder(root=base, train=train, train_paths=train_paths)
    test_dir = base / "test"
    if not test or not test_dir.is_dir():
        return out
    size_ = _check_size(size) or (int(train.shape[2]), int(train.shape[3]))
    kinds = sorted(p.name for p in test_dir.iterdir() if p.is_dir())
    paths, labels, kind_of = [], [], []
    for kind in kinds:
        files = list_images(test_dir / kind)
        paths += files
        kind_of += [kind] * len(files)
        labels += [int(kind != NORMAL_KIND)] * len(files)
    if not paths:
        return out
    images = read_images(paths, size=size_, mode=mode_)
    out.test, out.test_paths, out.test_kinds = images, paths, kind_of
    out.test_labels = np.asarray(labels, dtype=np.int64)
    if (base / "ground_truth").is_dir():
        masks = np.zeros((len(paths), *size_), dtype=bool)
        for i, (p, kind) in enumerate(zip(paths, kind_of, strict=True)):
            if kind == NORMAL_KIND:
                continue
            mp = _mask_path(base, kind, p)
            if mp is None:
                expected = base / "ground_truth" / kind / f"{p.stem}_mask.png"
                raise InputError(f"no mask for anomalous test image {p}: expected {expected}")
            masks[i] = read_masks([mp], size=size_)[0]
        out.masks = masks
    return out


@dataclass(frozen=True)
class ImageReading:
    """How a model reads image files: the size (height, width) every image is resized to, and gray or RGB.

    Saved in the model's manifest, so scoring reads new images the way the training images were read.
    """

    size: tuple[int, int]
    mode: str

    @classmethod
    def of(cls, images: np.ndarray) -> ImageReading:
        """The reading of uint8 (n, C, H, W) images as :func:`read_images` gave them."""
        return cls((int(images.shape[2]), int(images.shape[3])), "L" if images.shape[1] == 1 else "RGB")

    def read(self, paths: Sequence[str | Path]) -> np.ndarray:
        return read_images(paths, size=self.size, mode=self.mode)

    def to_dict(self) -> dict[str, object]:
        return {"kind": "images", "size": list(self.size), "mode": self.mode}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ImageReading:
        size = d["size"]
        if not isinstance(size, list | tuple) or len(size) != 2 or d.get("mode") not in MODES:
            raise InputError(f"the saved image reading {d!r} is damaged; fit the model again")
        return cls((int(size[0]), int(size[1])), str(d["mode"]))
