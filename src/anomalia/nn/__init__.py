"""Pure torch modules, the one training loop, the scoring module and image operations."""

from .conv import ConvAutoEncoderNet, ConvClassifierNet, transform_all
from .dense import DenseAutoEncoder, DenseVAE, mlp
from .images import gaussian_blur, resize, upsample_maps
from .runtime import batched, batched_parts, init_weights, intra_op_threads, resolve_device, seeded, to_tensor
from .scoring import Scorer
from .sequence import DeepAnTNet, LSTMEncoderDecoder, LSTMForecastNet
from .training import History, ProgressCallback, RowLoss, TrainConfig, evaluate_loss, reduce_loss, train

__all__ = [
    "ConvAutoEncoderNet",
    "ConvClassifierNet",
    "DeepAnTNet",
    "DenseAutoEncoder",
    "DenseVAE",
    "History",
    "LSTMEncoderDecoder",
    "LSTMForecastNet",
    "ProgressCallback",
    "RowLoss",
    "Scorer",
    "TrainConfig",
    "batched",
    "batched_parts",
    "evaluate_loss",
    "gaussian_blur",
    "init_weights",
    "intra_op_threads",
    "mlp",
    "reduce_loss",
    "resize",
    "resolve_device",
    "seeded",
    "to_tensor",
    "train",
    "transform_all",
    "upsample_maps",
]
