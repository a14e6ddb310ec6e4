"""Continual learning along a series: a series detector scores a stream block by block and keeps learning
(``partial_fit``) from each block it did not flag, as HTM keeps learning while it detects (NAB-style use).

Each step is scored by the model as it was before the step's block: the scores stay causal. A block with a
flagged step is not learned from, so an anomaly does not become normal; the next normal block is learned
with the steps before it as context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._core import InputError
from .series import SeriesDetector


def continual_scores(
    detector: SeriesDetector,
    values: Any,
    *,
    start: int,
    block: int = 250,
    flagged: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> np.ndarray:
    """Scores of every step of ``values`` while ``detector`` keeps learning after step ``start``.

    Parameters
    ----------
    detector : SeriesDetector
        A fitted series detector (typically fitted on ``values[:start]``); it is updated in place.
    values : array (n, channels)
        The whole series; steps before ``start`` are scored by the detector as given.
    start : int
        First step of the stream.
    block : int
        Steps scored between two updates.
    flagged : callable, optional
        ``flagged(scores_so_far, n_seen) -> bool array (n_seen,)``: the caller's label-free decision on the
        scores seen so far. A block with a flagged step is not learned from. None = learn from every block.

    Returns
    -------
    array (n,)
        One score per step (float64).
    """
    x = np.asarray(values)
    n = x.shape[0]
    if not 0 < start <= n:
        raise InputError(f"start must be in [1, {n}] (the steps before it fit the detector); got {start}")
    if block < 1:
        raise InputError(f"block must be a positive number of steps; got {block}")
    ctx = detector.span - 1
    scores = np.empty(n)
    scores[:start] = detector.anomaly_score(x[:start])
    for b0 in range(start, n, block):
        b1 = min(b0 + block, n)
        lo = max(0, b0 - ctx)
        scores[b0:b1] = detector.anomaly_score(x[lo:b1])[b0 - lo :]
        if b1 == n:
            break
        if flagged is not None and np.asarray(flagged(scores[:b1], b1))[b0:b1].any():
            continue
        try:
            detector.partial_fit(x[lo:b1])
        except InputError:  # too short to learn from with this window: keep the model as it is
            continue
    return scores
