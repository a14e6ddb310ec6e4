"""Augment a small normal training set with rows drawn from a VAE fitted on it (off unless asked for).

Measured on ADBench (``benchmarks/augment.py``, RESULTS.md "Scarce normal data"): the result there decides
whether this is worth it; nothing calls it by default. Calibration always uses real held-out normal rows
only, so the conformal p-values keep their guarantee whatever the synthetic rows look like.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._core import InputError, ParameterError, RandomState, check_fit_input, check_random_state, child_seed
from ..detectors import VAE, BaseDetector

#: The VAE that generates the rows: small, because the data it learns from is small.
AUGMENT_VAE = {"hidden": (64, 32), "latent": 4}


def augment_normal(
    X: Any,
    *,
    factor: float = 1.0,
    vae_params: Mapping[str, Any] | None = None,
    random_state: RandomState = None,
) -> np.ndarray:
    """``X`` followed by ``round(factor * len(X))`` rows drawn from a VAE fitted on ``X`` (float32)."""
    if not isinstance(factor, int | float) or isinstance(factor, bool) or not factor > 0:
        raise ParameterError(f"factor must be a number > 0 (synthetic rows per real row); got {factor!r}")
    arr, _ = check_fit_input(X)
    rng = check_random_state(random_state)
    vae = VAE(**{**AUGMENT_VAE, **(vae_params or {})}, random_state=child_seed(rng)).fit(arr)
    synthetic = vae.sample(max(1, round(factor * arr.shape[0])), random_state=child_seed(rng))
    return np.concatenate([arr, synthetic])


def fit_augmented(
    detector: BaseDetector,
    X: Any,
    *,
    factor: float = 1.0,
    vae_params: Mapping[str, Any] | None = None,
    random_state: RandomState = None,
) -> BaseDetector:
    """Fit ``detector`` on the normal rows ``X`` plus VAE samples, calibrated on real rows only.

    The detector's ``calibration_fraction`` of ``X`` is held out first (never seen by the VAE or the
    detector's training); the VAE is fitted on the rest and its samples join them for training; the
    held-out real rows then calibrate the p-values and the threshold.
    """
    if detector.input_kind != "table":
        raise InputError(f"augmentation draws table rows; {detector.name!r} reads {detector.input_kind}")
    arr, _ = check_fit_input(X)
    rng = check_random_state(random_state)
    perm = rng.permutation(arr.shape[0])
    n_cal = max(1, round(detector.calibration_fraction * arr.shape[0]))
    real_cal, real_train = arr[np.sort(perm[:n_cal])], arr[np.sort(perm[n_cal:])]
    train = augment_normal(real_train, factor=factor, vae_params=vae_params, random_state=child_seed(rng))
    detector.fit(train)
    detector._calibrate(detector.anomaly_score(real_cal))  # real rows only: the p-value guarantee holds
    return detector
