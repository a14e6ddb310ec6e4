"""Hundman et al. (KDD 2018) non-parametric dynamic threshold, with pruning.

On a sequence of (smoothed) errors ``e`` with mean ``mu`` and standard deviation ``sd``, the threshold is
``eps = mu + z sd`` for the ``z`` in ``z_range`` that maximises

    (delta_mu / mu + delta_sd / sd) / (|e_a| + |E_seq|^2)

where ``delta_mu`` and ``delta_sd`` are how much the mean and standard deviation fall when the errors above
``eps`` (``e_a``, forming ``E_seq`` contiguous sequences) are removed. Pruning then sorts the sequences by
their maximum error, appends the largest error below ``eps``, and keeps only the sequences before the last
step whose relative decrease reaches ``prune`` (0.13 in the paper): anomalies that do not stand out from
the next one are reclassified as normal. No labels are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core import InputError, find_runs


@dataclass(frozen=True)
class DynamicResult:
    """Per-step flags and the threshold used for each step."""

    flags: np.ndarray
    thresholds: np.ndarray


def _epsilon(e: np.ndarray, zs: np.ndarray) -> float:
    mu, sd = float(e.mean()), float(e.std())
    best, eps_best = -np.inf, float(e.max())
    if sd == 0 or mu == 0:
        return eps_best
    for z in zs:
        eps = mu + z * sd
        above = e > eps
        n_above = int(above.sum())
        if n_above == 0 or n_above == e.size:
            continue
        below = e[~above]
        n_seq = len(find_runs(above))
        score = ((mu - below.mean()) / mu + (sd - below.std()) / sd) / (n_above + n_seq**2)
        if score > best:
            best, eps_best = score, float(eps)
    return eps_best


def _prune(e: np.ndarray, flags: np.ndarray, prune: float) -> np.ndarray:
    seqs = find_runs(flags)
    if not len(seqs):
        return flags
    maxes = np.array([e[a:b].max() for a, b in seqs])
    order = np.argsort(-maxes, kind="stable")
    normal_max = float(e[~flags].max()) if (~flags).any() else 0.0
    m = np.r_[maxes[order], normal_max]
    with np.errstate(divide="ignore", invalid="ignore"):
        dec = np.where(m[:-1] > 0, (m[:-1] - m[1:]) / m[:-1], 0.0)
    big = np.flatnonzero(dec >= prune)
    keep = order[: big[-1] + 1] if big.size else order[:0]
    out = np.zeros_like(flags)
    for a, b in seqs[keep]:
        out[a:b] = True
    return out


def dynamic_threshold(
    errors: np.ndarray,
    *,
    z_range: tuple[float, float] = (2.0, 10.0),
    z_step: float = 0.5,
    prune: float = 0.13,
    window: int | None = None,
    step: int | None = None,
) -> DynamicResult:
    """Flags from Hundman's threshold and pruning.

    With ``window`` None the whole sequence is thresholded at once. With ``window``, each block of ``step``
    (default ``window // 4``) new errors is judged with the threshold of the last ``window`` errors up to the
    block's end: the decisions use no error later than their block (a delay of at most ``step`` steps).
    """
    e = np.asarray(errors, dtype=np.float64).ravel()
    if e.size == 0 or not np.isfinite(e).all():
        raise InputError("dynamic_threshold needs a non-empty sequence of finite errors")
    zs = np.arange(z_range[0], z_range[1] + 1e-9, z_step)
    if window is None or window >= e.size:
        eps = _epsilon(e, zs)
        return DynamicResult(_prune(e, e > eps, prune), np.full(e.size, eps))
    step = step or max(1, window // 4)
    flags = np.zeros(e.size, dtype=bool)
    thr = np.empty(e.size)
    for end in range(min(window, e.size), e.size + step, step):
        end = min(end, e.size)
        lo = max(0, end - window)
        block = slice(max(lo, end - step) if end > window else 0, end)
        seg = e[lo:end]
        eps = _epsilon(seg, zs)
        seg_flags = _prune(seg, seg > eps, prune)
        flags[block] = seg_flags[block.start - lo :]
        thr[block] = eps
        if end == e.size:
            break
    return DynamicResult(flags, thr)
