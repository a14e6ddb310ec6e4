"""Calibration (conformal p-values) and thresholds; numpy and scipy only, usable with any scores."""

from .calibration import conformal_p_values
from .pot import GPDTail, fit_tail
from .thresholds import (
    POT,
    THRESHOLDS,
    BestF1,
    Contamination,
    FalseAlarmRate,
    Fixed,
    Quantile,
    Sweep,
    TargetPrecision,
    TargetRecall,
    Threshold,
    parse_threshold,
    sweep,
)

__all__ = [
    "POT",
    "THRESHOLDS",
    "BestF1",
    "Contamination",
    "FalseAlarmRate",
    "Fixed",
    "GPDTail",
    "Quantile",
    "Sweep",
    "TargetPrecision",
    "TargetRecall",
    "Threshold",
    "conformal_p_values",
    "fit_tail",
    "parse_threshold",
    "sweep",
]
