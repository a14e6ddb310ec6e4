"""Input checks for image arrays: layouts, channel counts and sizes.

Images come as (n, H, W) grayscale, (n, C, H, W) channels-first or (n, H, W, C) channels-last arrays. The
layout is explicit (``"nhw"``, ``"nchw"``, ``"nhwc"``) or ``"auto"``, which reads it from the shape and
refuses to guess when the shape fits both channel orders. Everything comes out as float32 (n, C, H, W).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import InputError, InputTypeError, SchemaError
from .validation import MIN_FIT_ROWS, check_finite

LAYOUTS = ("auto", "nhw", "nchw", "nhwc")
#: Channel counts an image can have: grayscale, grayscale + alpha, RGB, RGBA.
CHANNELS = (1, 2, 3, 4)


def resolve_layout(shape: tuple[int, ...], layout: str, *, name: str = "X") -> str:
    """The concrete layout (``"nhw"``, ``"nchw"`` or ``"nhwc"``) of an array of ``shape``."""
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {list(LAYOUTS)}; got {layout!r}")
    ndim = len(shape)
    if ndim not in (3, 4):
        raise InputError(
            f"{name} must be a batch of images, 3-D (n, H, W) or 4-D (n, C, H, W) / (n, H, W, C); got {ndim}-D "
            f"of shape {shape}." + (" A single image needs a leading batch axis: X[None]." if ndim == 2 else "")
        )
    if layout != "auto":
        if (layout == "nhw") != (ndim == 3):
            raise InputError(f"layout={layout!r} needs a {3 if layout == 'nhw' else 4}-D {name}; got shape {shape}")
        return layout
    if ndim == 3:
        return "nhw"
    first, last = shape[1] in CHANNELS, shape[3] in CHANNELS
    if first and not last:
        return "nchw"
    if last and not first:
        return "nhwc"
    raise InputError(
        f"cannot tell the channel axis of {name} with shape {shape}: "
        + ("both axis 1 and axis 3 could be channels" if first else "neither axis 1 nor axis 3 is 1-4 channels")
        + "; pass layout='nchw' (n, C, H, W) or layout='nhwc' (n, H, W, C)"
    )


def as_image_array(X: Any, *, layout: str = "auto", name: str = "X") -> tuple[np.ndarray, str]:
    """``X`` as a C-contiguous float32 (n, C, H, W) array and the layout it came in.

    Checks type, dimensions, channel count, emptiness and finiteness; never modifies ``X``.
    """
    if X is None:
        raise InputTypeError(f"{name} is None; pass an image array (n, H, W), (n, C, H, W) or (n, H, W, C)")
    if isinstance(X, str | bytes):
        raise InputTypeError(
            f"{name} is a string ({X[:40]!r}); pass the images, not a path: "
            "read a folder with anomalia.data.read_image_folder(path)"
        )
    try:
        raw = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"{name} could not be read as an image array: {exc}") from None
    if raw.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must hold pixel values (numbers); got dtype {raw.dtype}")
    concrete = resolve_layout(raw.shape, layout, name=name)
    if raw.size == 0:
        raise InputError(f"{name} is empty (shape {raw.shape}); it needs at least one image with pixels")
    if concrete == "nhw":
        arr = raw[:, None]
    elif concrete == "nhwc":
        arr = np.moveaxis(raw, 3, 1)
    else:
        arr = raw
    if arr.shape[1] not in CHANNELS:
        raise InputError(
            f"{name} has {arr.shape[1]} channels (layout {concrete!r}, shape {raw.shape}); images have 1 (gray), "
            "2, 3 (RGB) or 4 (RGBA) channels: check the layout argument"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(arr, name=name)
    return arr, concrete


def check_image_fit_input(X: Any, *, layout: str = "auto", name: str = "X") -> tuple[np.ndarray, str]:
    """:func:`as_image_array` plus the checks of fitting: enough images, not all identical."""
    arr, concrete = as_image_array(X, layout=layout, name=name)
    n = arr.shape[0]
    if n < MIN_FIT_ROWS:
        raise InputError(
            f"{name} has {n} image(s) (n_samples = {n}); fitting needs at least {MIN_FIT_ROWS} normal images, "
            "because a part is held out to calibrate the threshold"
        )
    flat = arr.reshape(n, -1)
    if np.all(flat.max(axis=0) == flat.min(axis=0)):
        raise InputError(f"all {n} images of {name} are identical, so there is no normal variation to learn")
    return arr, concrete


def check_image_shape(shape: tuple[int, ...], fitted: tuple[int, ...], *, name: str = "X") -> None:
    """Raise :class:`SchemaError` when images of (C, H, W) ``shape`` differ from the fitted ones."""
    if tuple(shape) != tuple(fitted):
        raise SchemaError(
            f"{name} holds images of shape (C, H, W) = {tuple(shape)} but the detector was fitted on "
            f"{tuple(fitted)}; resize them (anomalia.data.resize_images) or fit with image_size=(H, W), "
            "which resizes every input"
        )
