"""Drift on the stream of p-values: under no drift the conformal p-values of a key are uniform on (0, 1].

:func:`ks_uniform` is a one-sample Kolmogorov–Smirnov test of a window of p-values against the uniform
law. The runner tests each key's p-values in non-overlapping windows of ``window`` points and reports drift
when the test's p-value is at most ``level``: for independent uniform p-values that is a false alarm in a
share ``level`` of the windows, so ``level / window`` false drifts per point. Conformal p-values that share
one calibration set are slightly dependent, so the rate is measured (``benchmarks/stream.py``) rather
than only claimed. A level shift upwards makes the p-values pile up near 0, one downwards near 1; both
move the empirical distribution away from the diagonal, and the test sees both.
"""

from __future__ import annotations

import numpy as np


def ks_uniform(p_values: np.ndarray) -> tuple[float, float]:
    """``(D, p)``: the KS statistic of ``p_values`` against Uniform(0, 1) and its exact p-value."""
    x = np.sort(np.asarray(p_values, dtype=np.float64))
    n = x.size
    if n == 0:
        return 0.0, 1.0
    i = np.arange(1, n + 1)
    d = float(max(np.max(i / n - x), np.max(x - (i - 1) / n)))
    from scipy.stats import kstwo  # imported on first use: scipy.stats is slow to import

    return d, float(kstwo.sf(d, n))


def ks_critical(window: int, level: float) -> float:
    """The KS statistic above which a window of ``window`` uniform p-values is called drift at ``level``."""
    from scipy.stats import kstwo

    return float(kstwo.isf(level, window))
