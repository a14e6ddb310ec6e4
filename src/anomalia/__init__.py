"""anomalia: deep-learning anomaly detection, from normal data to a trusted, explained alert.

>>> import anomalia as an
>>> det = an.AutoEncoder(random_state=0).fit(X_normal)          # doctest: +SKIP
>>> det.anomaly_score(X), det.p_value(X), det.is_anomaly(X)     # doctest: +SKIP
"""

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
from .bundle import load, read_manifest, save
from .detectors import (
    GEOM,
    PCA,
    VAE,
    AutoEncoder,
    BaseDetector,
    CNNForecaster,
    ConvAutoEncoder,
    IsolationForest,
    LSTMAutoEncoder,
    LSTMForecaster,
    WindowAutoEncoder,
    WindowVAE,
    detector_names,
    get_detector,
    make_detector,
)
from .scoring import (
    POT,
    BestF1,
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

__version__ = "0.1.0"

__all__ = [
    "GEOM",
    "PCA",
    "POT",
    "VAE",
    "AnomaliaError",
    "AutoEncoder",
    "BaseDetector",
    "BestF1",
    "BundleError",
    "CNNForecaster",
    "Contamination",
    "ConvAutoEncoder",
    "FalseAlarmRate",
    "Fixed",
    "InputError",
    "InputTypeError",
    "IsolationForest",
    "LSTMAutoEncoder",
    "LSTMForecaster",
    "NotFittedError",
    "ParameterError",
    "Quantile",
    "SchemaError",
    "TargetPrecision",
    "TargetRecall",
    "Threshold",
    "ThresholdError",
    "WindowAutoEncoder",
    "WindowVAE",
    "conformal_p_values",
    "detector_names",
    "explain",
    "get_detector",
    "load",
    "make_detector",
    "metrics",
    "parse_threshold",
    "read_manifest",
    "save",
    "scoring",
]
