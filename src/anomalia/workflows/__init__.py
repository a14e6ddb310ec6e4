"""Runs over files and frames that return result objects; the command line and the service call these.

Three entry points, each dispatching once on the modality (the detector's declared ``input_kind``):
:func:`fit`, :func:`score` and :func:`evaluate`; the per-modality functions behind them are public too.
"""

from .config import load_run_file
from .demo import DemoResult, run_demo
from .dispatch import DEFAULT_MODELS, choose_detector, evaluate, fit, score
from .evaluate import build_evaluation, demo_evaluation, evaluate_arrays, evaluate_file, operating_points
from .fit import FitResult, fit_file, parse_params
from .info import model_info
from .score import EXPLAIN_OPTIONS, ScoreResult, score_batches, score_file

__all__ = [
    "DEFAULT_MODELS",
    "EXPLAIN_OPTIONS",
    "DemoResult",
    "FitResult",
    "ScoreResult",
    "build_evaluation",
    "choose_detector",
    "demo_evaluation",
    "evaluate",
    "evaluate_arrays",
    "evaluate_file",
    "fit",
    "fit_file",
    "load_run_file",
    "model_info",
    "operating_points",
    "parse_params",
    "run_demo",
    "score",
    "score_batches",
    "score_file",
]
