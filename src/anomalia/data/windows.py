"""Sliding windows over a series: the one windowing code every series detector uses.

A window of ``length`` steps is named by the step it ends at, so window ``k`` covers steps
``k .. k + length - 1`` and its score belongs to step ``k + length - 1``. Views are zero-copy
(``numpy.lib.stride_tricks``): a (n, channels) series of float32 gives a (n - length + 1, length, channels)
array that shares its memory, and ``torch.from_numpy`` shares it again, so a training set of overlapping
windows costs no more memory than the series itself.
"""

from __future__ import annotations

import numpy as np

from .._core import InputError

#: Score given to the steps before the first full window ("warm-up"): no evidence of an anomaly.
WARMUP_SCORE = 0.0


def sliding_windows(X: np.ndarray, length: int, *, stride: int = 1) -> np.ndarray:
    """Zero-copy view of the windows of ``X`` (n_steps, n_channels): shape (n_windows, length, n_channels).

    With ``stride`` > 1 only every ``stride``-th window is kept (still a view). The view is marked writable
    so torch can share it without a copy; never write to it.
    """
    if X.ndim != 2:
        raise InputError(f"a series must be 2-D (n_steps, n_channels); got shape {X.shape}")
    n = X.shape[0]
    if n < length:
        raise InputError(f"the series has {n} steps, fewer than one window of {length}; pass a longer series")
    view = np.lib.stride_tricks.sliding_window_view(X, length, axis=0, writeable=X.flags.writeable)
    return view.transpose(0, 2, 1)[::stride]


def n_windows(n_steps: int, length: int) -> int:
    """How many full windows of ``length`` a series of ``n_steps`` holds."""
    return max(0, n_steps - length + 1)


def per_step(window_values: np.ndarray, n_steps: int, length: int, fill: float = WARMUP_SCORE) -> np.ndarray:
    """Place one value per window at the step the window ends at; the ``length - 1`` warm-up steps get ``fill``.

    ``window_values`` has shape (n_windows, ...) ; the result has shape (n_steps, ...).
    """
    out = np.full((n_steps, *window_values.shape[1:]), fill, dtype=np.float64)
    out[length - 1 :] = window_values
    return out
