"""Drift on the stream of p-values: under no drift the conformal p-values of a key are uniform on (0, 1].

:func:`ks_uniform` is a one-sample Kolmogorov–Smirnov test of a window of p-values against the uniform
law. The runner tests each key's p-values in non-overlapping windows of ``window`` points and reports drift
when the statistic exceeds the critical value at ``level``: for independent uniform p-values that is a
false alarm in a share ``level`` of the windows. The p-values of neighbouring points are not independent
when the scores are autocorrelated (a series detector's windows overlap, real metrics move slowly): a
window of ``n`` such p-values carries the information of fewer independent ones, its empirical law strays
further from the diagonal, and the plain test fires far more often than ``level`` on stationary data. The
calibration set the p-values are computed against is a dependent sample too (the key's last scores), so
the p-values of a window are in effect a two-sample comparison of the window with that set. The test is
run at the combined effective sample size ``n m / (n + m)`` of the window (``n``) and the set (``m``),
each from :func:`effective_size` (the usual long-run variance correction for the mean of a stationary
series, applied to the empirical distribution function); for independent scores that is the two-sample
KS test's own size. The false-alarm rate is measured on stationary real series in
``benchmarks/stream.py``. A level shift upwards makes the p-values pile up
near 0, one downwards near 1; both move the empirical distribution away from the diagonal, and the test
sees both.
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


def effective_size(p_values: np.ndarray) -> int:
    """The effective sample size of a window of serially dependent p-values (in time order).

    ``n / (1 + 2 * sum(rho_k))``: the window's autocorrelations ``rho_k`` summed over the lags 1, 2, ...
    up to the first that is not positive (an initial positive sequence, as for the effective size of a
    Markov chain), at most ``n // 4`` lags; at least 2, at most ``n``. About ``n`` for independent
    p-values; a constant window (every point flagged, say) keeps ``n``.
    """
    x = np.asarray(p_values, dtype=np.float64)
    n = x.size
    if n < 8:
        return n
    x = x - x.mean()
    v = float(x @ x)
    if not v > 1e-12 * n:
        return n
    lags = n // 4
    r = np.array([float(x[:-k] @ x[k:]) for k in range(1, lags + 1)]) / v
    stop = np.flatnonzero(r <= 0.0)
    tau = 1.0 + 2.0 * float(r[: stop[0] if stop.size else lags].sum())
    return int(max(2, min(n, n / tau)))
