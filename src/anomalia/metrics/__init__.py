"""Evaluation metrics; built on scikit-learn's metrics."""

from .point import (
    ThresholdSweep,
    confusion,
    evaluate,
    pr_auc,
    precision_at_k,
    precision_recall_f1,
    roc_auc,
    roc_curve,
    threshold_sweep,
)

__all__ = [
    "ThresholdSweep",
    "confusion",
    "evaluate",
    "pr_auc",
    "precision_at_k",
    "precision_recall_f1",
    "roc_auc",
    "roc_curve",
    "threshold_sweep",
]
