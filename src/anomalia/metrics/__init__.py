"""Evaluation metrics; built on scikit-learn's metrics."""

from .nab import PROFILES, NABProfile, NABSweep, nab_score, nab_sweep
from .pixel import per_region_overlap, pixel_roc_auc
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
from .timeseries import (
    PA_NOTE,
    event_prf,
    point_adjust,
    point_adjusted_prf,
    point_prf,
    range_prf,
    ranges,
    series_report,
)

__all__ = [
    "PA_NOTE",
    "PROFILES",
    "NABProfile",
    "NABSweep",
    "ThresholdSweep",
    "confusion",
    "evaluate",
    "event_prf",
    "nab_score",
    "nab_sweep",
    "per_region_overlap",
    "pixel_roc_auc",
    "point_adjust",
    "point_adjusted_prf",
    "point_prf",
    "pr_auc",
    "precision_at_k",
    "precision_recall_f1",
    "range_prf",
    "ranges",
    "roc_auc",
    "roc_curve",
    "series_report",
    "threshold_sweep",
]
