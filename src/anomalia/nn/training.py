"""The one training loop. Every deep detector supplies a module and a per-row loss; the loop owns the rest:
mini-batches, optimiser, robust trimming, early stopping on held-out normal data, device and progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

#: ``callback(epoch, train_loss, val_loss)`` after every epoch; ``val_loss`` is None without a held-out set.
ProgressCallback = Callable[[int, float, float | None], None]
#: ``loss_fn(module, batch)`` -> per-row loss of shape (batch,).
RowLoss = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the estimators fill it from their constructor arguments."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    optimizer: str = "adamw"
    patience: int = 10
    min_delta: float = 1e-4
    trim_fraction: float = 0.0  # share of the highest-loss rows of each batch kept out of the gradient


@dataclass
class History:
    """What happened during training: losses per epoch, the epoch whose weights were kept, time spent."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }


def reduce_loss(per_row: torch.Tensor, trim_fraction: float) -> torch.Tensor:
    """Mean of the per-row losses, leaving out the highest ``trim_fraction`` of them."""
    if trim_fraction <= 0.0:
        return per_row.mean()
    keep = max(1, math.ceil((1.0 - trim_fraction) * per_row.shape[0]))
    return torch.topk(per_row, keep, largest=False, sorted=False).values.mean()


def _optimizer(module: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam(W) with the fused kernel where this torch has it (about 30 % faster steps for small networks)."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    try:
        return cls(module.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def evaluate_loss(
    module: nn.Module, loss_fn: RowLoss, X: torch.Tensor, trim_fraction: float, batch_size: int = 65536
) -> float:
    """Mean (trimmed) per-row loss over ``X`` without gradients."""
    module.eval()
    with torch.inference_mode():
        per_row = torch.cat([loss_fn(module, X[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)])
    return float(reduce_loss(per_row, trim_fraction))


def train(
    module: nn.Module,
    loss_fn: RowLoss,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    callback: ProgressCallback | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> History:
    """Train ``module`` in place and return its :class:`History`.

    ``X_train`` and ``X_val`` already sit on the module's device. With ``X_val`` the weights of the epoch
    with the lowest held-out loss are kept and training stops after ``patience`` epochs without progress.
    """
    opt = optimizer or _optimizer(module, config)
    n, bs = X_train.shape[0], min(config.batch_size, X_train.shape[0])
    history = History()
    best, best_state, waited = math.inf, None, 0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        module.train()
        perm = torch.randperm(n, generator=generator).to(X_train.device)
        total = torch.zeros((), device=X_train.device)
        for i in range(0, n, bs):
            xb = X_train[perm[i : i + bs]]
            loss = reduce_loss(loss_fn(module, xb), config.trim_fraction)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * xb.shape[0]
        train_loss = float(total) / n
        history.train_loss.append(train_loss)
        val_loss = None
        if X_val is not None and X_val.shape[0] > 0:
            val_loss = evaluate_loss(module, loss_fn, X_val, config.trim_fraction)
            history.val_loss.append(val_loss)
        if callback is not None:
            callback(epoch, train_loss, val_loss)
        monitored = train_loss if val_loss is None else val_loss
        if not math.isfinite(monitored):
            break
        if best == math.inf or monitored < best - config.min_delta * abs(best):
            best, waited, history.best_epoch = monitored, 0, epoch
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                history.stopped_early = True
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    history.seconds = time.perf_counter() - start
    return history
