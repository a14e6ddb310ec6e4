"""The public estimators, their registry, saving and loading (:func:`load`), and the per-stream state."""

from .autoencoder import AutoEncoder
from .base import BaseDetector, normalise_shares
from .conv_autoencoder import ConvAutoEncoder
from .deep import DeepDetector
from .ensemble import Ensemble
from .forecasters import CNNForecaster, LSTMForecaster
from .geom import GEOM
from .iforest import IsolationForest
from .image import ImageDetector
from .image_knn import ImageKNN
from .knn import KNN
from .lstm_autoencoder import LSTMAutoEncoder
from .multimodal import MultiModalDetector
from .pca import PCA
from .persist import load, save
from .registry import detector_names, get_detector, make_detector, register
from .series import SeriesDetector
from .stream_state import StreamState
from .telemanom import Telemanom
from .text import TextDetector
from .text_lm import TextLM
from .vae import VAE
from .windowed import WindowAutoEncoder, WindowVAE

__all__ = [
    "GEOM",
    "KNN",
    "PCA",
    "VAE",
    "AutoEncoder",
    "BaseDetector",
    "CNNForecaster",
    "ConvAutoEncoder",
    "DeepDetector",
    "Ensemble",
    "ImageDetector",
    "ImageKNN",
    "IsolationForest",
    "LSTMAutoEncoder",
    "LSTMForecaster",
    "MultiModalDetector",
    "SeriesDetector",
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
    "normalise_shares",
    "register",
    "save",
]
