"""Pure torch modules and the one training loop."""

from .conv import ConvAutoEncoderNet, ConvClassifierNet, transform_all
from .dense import DenseAutoEncoder, DenseVAE, mlp
from .runtime import batched, init_weights, intra_op_threads, resolve_device, seeded, to_tensor
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
    "TrainConfig",
    "batched",
    "evaluate_loss",
    "init_weights",
    "intra_op_threads",
    "mlp",
    "reduce_loss",
    "resolve_device",
    "seeded",
    "to_tensor",
    "train",
    "transform_all",
]
