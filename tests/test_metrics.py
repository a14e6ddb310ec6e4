"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

import anomalia as an
from anomalia import metrics


def test_hand_computed_case() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.3])
    flags = s > 0.32
    assert metrics.confusion(y, flags) == {"tp": 1, "fp": 2, "tn": 1, "fn": 1}
    p, r, f1 = metrics.precision_recall_f1(y, flags)
    assert (p, r, f1) == pytest.approx((1 / 3, 1 / 2, 0.4))
    assert metrics.roc_auc(y, s) == pytest.approx(4 / 6)  # pairs (anomaly > normal): 0.8 beats 3, 0.3 beats 1
    assert metrics.pr_auc(y, s) == pytest.approx((1 / 1 + 2 / 4) / 2)
    assert metrics.precision_at_k(y, s) == 0.5
    out = metrics.evaluate(y, s, flags)
    assert out["false_alarm_rate"] == pytest.approx(2 / 3) and out["roc_auc"] == pytest.approx(4 / 6)


def test_threshold_sweep_trades_precision_for_recall() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.arange(6.0)
    sw = metrics.threshold_sweep(y, s)
    assert np.all(np.diff(sw.recall) <= 0)  # higher threshold, lower recall
    i = np.flatnonzero(sw.thresholds == 4.0)[0]
    assert (sw.precision[i], sw.recall[i]) == (1.0, 2 / 3)


def test_metric_errors_are_clear() -> None:
    with pytest.raises(an.InputError, match="both normal rows and anomalies"):
        metrics.roc_auc([0, 0], [1.0, 2.0])
    with pytest.raises(an.InputError, match="one per row"):
        metrics.roc_auc([0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(an.InputError, match="NaN"):
        metrics.pr_auc([0, 1], [1.0, np.nan])
    with pytest.raises(an.InputError, match="k must be"):
        metrics.precision_at_k([0, 1], [1.0, 2.0], k=5)
