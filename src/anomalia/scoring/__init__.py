"""Calibration (conformal p-values) and thresholds, streaming ones included; numpy and scipy only, usable with any
scores."""

from .calibration import Calibrator, conformal_p_values
from .combine import bonferroni
from .dynamic import DynamicResult, dynamic_threshold
from .pot import GPDTail, fit_excesses, fit_tail
from .smoothing import ewma, running_tail_probability, running_zscore
from .spot import SPOT, SPOTState, StreamResult
from .telemanom import TelemanomResult, buffer_flags, telemanom_threshold
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
    "SPOT",
    "THRESHOLDS",
    "BestF1",
    "Calibrator",
    "Contamination",
    "DynamicResult",
    "FalseAlarmRate",
    "Fixed",
    "GPDTail",
    "Quantile",
    "SPOTState",
    "StreamResult",
    "Sweep",
    "TargetPrecision",
    "TargetRecall",
    "TelemanomResult",
    "Threshold",
    "bonferroni",
    "buffer_flags",
    "conformal_p_values",
    "dynamic_threshold",
    "ewma",
    "fit_excesses",
    "fit_tail",
    "parse_threshold",
    "running_tail_probability",
    "running_zscore",
    "sweep",
    "telemanom_threshold",
]
