"""The demo: breast-cancer records that ship with scikit-learn (benign = normal, malignant = anomaly)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import load_breast_cancer

from ..detectors import BaseDetector, make_detector
from ..metrics import evaluate

DEMO_DETECTORS = ("autoencoder", "vae", "ensemble", "isolation-forest", "knn", "pca")


@dataclass
class DemoResult:
    """Metrics per detector on the held-out records, and what the demo trained on."""

    alpha: float
    n_train: int
    n_test_normal: int
    n_test_anomalies: int
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    detectors: dict[str, BaseDetector] = field(default_factory=dict)
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)


def run_demo(
    alpha: float = 0.05,
    train_share: float = 0.6,
    random_state: int = 0,
    detectors: tuple[str, ...] = DEMO_DETECTORS,
    on_detector: Callable[[str], None] | None = None,
) -> DemoResult:
    """Train each detector on ``train_share`` of the benign records, flag at false-alarm rate ``alpha``
    and evaluate on the other benign records plus all malignant ones."""
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, (data.target == 0).to_numpy().astype(int)  # sklearn: 0 = malignant
    rng = np.random.default_rng(random_state)
    normal = rng.permutation(np.flatnonzero(y == 0))
    n_train = round(train_share * normal.size)
    test_idx = np.r_[normal[n_train:], np.flatnonzero(y == 1)]
    X_train, X_test, y_test = X.iloc[normal[:n_train]], X.iloc[test_idx], y[test_idx]
    result = DemoResult(alpha, n_train, int((y_test == 0).sum()), int(y_test.sum()))
    result.X_test, result.y_test, result.feature_names = X_test.to_numpy(np.float32), y_test, list(X.columns)
    for name in detectors:
        if on_detector is not None:
            on_detector(name)
        start = time.perf_counter()
        det = make_detector(name, threshold=f"false-alarm:{alpha}", random_state=random_state).fit(X_train)
        scores = det.anomaly_score(X_test)
        row = evaluate(y_test, scores, det.decide(scores))
        row["seconds"] = time.perf_counter() - start
        result.rows[name] = row
        result.detectors[name] = det
    return result
