"""anomalia: deep-learning anomaly detection, from normal data to a trusted, explained alert.

>>> import anomalia as an
>>> det = an.AutoEncoder(random_state=0).fit(X_normal)          # doctest: +SKIP
>>> det.anomaly_score(X), det.p_value(X), det.is_anomaly(X)     # doctest: +SKIP

Importing is lazy (PEP 562): a name is imported on first use, so ``import anomalia.scoring`` or
``anomalia.metrics`` loads no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_NAMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "AnomaliaError",
            "BundleError",
            "InputError",
            "InputTypeError",
            "NotFittedError",
            "ParameterError",
            "SchemaError",
            "ThresholdError",
        ),
        "._core",
    ),
    **dict.fromkeys(
        (
            "GEOM",
            "KNN",
            "PCA",
            "VAE",
            "AutoEncoder",
            "BaseDetector",
            "CNNForecaster",
            "ConvAutoEncoder",
            "Ensemble",
            "ImageKNN",
            "IsolationForest",
            "LSTMAutoEncoder",
            "LSTMForecaster",
            "MultiModalDetector",
            "StreamState",
            "Telemanom",
            "TextDetector",
            "TextLM",
            "WindowAutoEncoder",
            "WindowVAE",
            "detector_names",
            "get_detector",
            "load",
            "make_detector",
        ),
        ".detectors",
    ),
    **dict.fromkeys(
        (
            "POT",
            "SPOT",
            "BestF1",
            "Calibrator",
            "Contamination",
            "FalseAlarmRate",
            "Fixed",
            "Quantile",
            "TargetPrecision",
            "TargetRecall",
            "Threshold",
            "conformal_p_values",
            "parse_threshold",
        ),
        ".scoring",
    ),
    "read_manifest": ".bundle",
    "Model": ".model",
    "fit": ".model",
    "load_model": ".model",
    "Evaluation": ".results",
    "ScoredRows": ".results",
    "diagnose": ".workflows.diagnose",
}
#: Subpackages reachable as attributes (``an.metrics``), imported on first use too.
_MODULES = (
    "bundle",
    "data",
    "detectors",
    "explain",
    "metrics",
    "model",
    "nn",
    "report",
    "results",
    "scoring",
    "workflows",
)

__all__ = [
    "GEOM",
    "KNN",
    "PCA",
    "POT",
    "SPOT",
    "VAE",
    "AnomaliaError",
    "AutoEncoder",
    "BaseDetector",
    "BestF1",
    "BundleError",
    "CNNForecaster",
    "Calibrator",
    "Contamination",
    "ConvAutoEncoder",
    "Ensemble",
    "Evaluation",
    "FalseAlarmRate",
    "Fixed",
    "ImageKNN",
    "InputError",
    "InputTypeError",
    "IsolationForest",
    "LSTMAutoEncoder",
    "LSTMForecaster",
    "Model",
    "MultiModalDetector",
    "NotFittedError",
    "ParameterError",
    "Quantile",
    "SchemaError",
    "ScoredRows",
    "StreamState",
    "TargetPrecision",
    "TargetRecall",
    "Telemanom",
    "TextDetector",
    "TextLM",
    "Threshold",
    "ThresholdError",
    "WindowAutoEncoder",
    "WindowVAE",
    "conformal_p_values",
    "detector_names",
    "diagnose",
    "explain",
    "fit",
    "get_detector",
    "load",
    "load_model",
    "make_detector",
    "metrics",
    "parse_threshold",
    "read_manifest",
    "scoring",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'anomalia' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_MODULES})


if TYPE_CHECKING:  # for type checkers and IDEs: the names __getattr__ provides
    from . import explain, metrics, scoring
    from ._core import (
        AnomaliaError,
        BundleError,
        InputError,
        InputTypeError,
        NotFittedError,
        ParameterError,
        SchemaError,
        ThresholdError,
    )
    from .bundle import read_manifest
    from .detectors import (
        GEOM,
        KNN,
        PCA,
        VAE,
        AutoEncoder,
        BaseDetector,
        CNNForecaster,
        ConvAutoEncoder,
        Ensemble,
        ImageKNN,
        IsolationForest,
        LSTMAutoEncoder,
        LSTMForecaster,
        MultiModalDetector,
        StreamState,
        Telemanom,
        TextDetector,
        TextLM,
        WindowAutoEncoder,
        WindowVAE,
        detector_names,
        get_detector,
        load,
        make_detector,
    )
    from .model import Model, fit, load_model
    from .results import Evaluation, ScoredRows
    from .scoring import (
        POT,
        SPOT,
        BestF1,
        Calibrator,
        Contamination,
        FalseAlarmRate,
        Fixed,
        Quantile,
        TargetPrecision,
        TargetRecall,
        Threshold,
        conformal_p_values,
        parse_threshold,
    )
    from .workflows.diagnose import diagnose
