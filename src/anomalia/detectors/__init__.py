"""The public detectors and their registry."""

from .autoencoder import AutoEncoder
from .base import BaseDetector, normalise_shares
from .deep import DeepDetector
from .iforest import IsolationForest
from .pca import PCA
from .registry import detector_names, get_detector, make_detector, register
from .vae import VAE

__all__ = [
    "PCA",
    "VAE",
    "AutoEncoder",
    "BaseDetector",
    "DeepDetector",
    "IsolationForest",
    "detector_names",
    "get_detector",
    "make_detector",
    "normalise_shares",
    "register",
]
