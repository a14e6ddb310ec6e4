"""Runs over files and frames that return result objects; the command line and the service call these."""

from .config import load_run_file
from .demo import DemoResult, run_demo
from .evaluate import (
    Contribution,
    Evaluation,
    OperatingPoint,
    TopRow,
    demo_evaluation,
    evaluate_arrays,
    evaluate_file,
    operating_points,
)
from .fit import FitResult, fit_file, parse_params
from .model import PREPROCESS, Model, load_model, model_info
from .score import EXPLAIN_OPTIONS, ScoredBatch, ScoreResult, score_batches, score_file

__all__ = [
    "EXPLAIN_OPTIONS",
    "PREPROCESS",
    "Contribution",
    "DemoResult",
    "Evaluation",
    "FitResult",
    "Model",
    "OperatingPoint",
    "ScoreResult",
    "ScoredBatch",
    "TopRow",
    "demo_evaluation",
    "evaluate_arrays",
    "evaluate_file",
    "fit_file",
    "load_model",
    "load_run_file",
    "model_info",
    "operating_points",
    "parse_params",
    "run_demo",
    "score_batches",
    "score_file",
]
