"""A byte-level language model of normal text: score = mean negative log-likelihood per byte.

A small byte-level network (a GRU by default, :class:`anomalia.nn.text.ByteGRU`, or a causal transformer,
:class:`anomalia.nn.text.ByteTransformer`) learns to predict the next byte of normal texts, trained by the
one training loop (:func:`anomalia.nn.train`) on windows of the normal texts run together, each ended by a
boundary token. A text is scored alone, from a boundary token on: every byte of it and its end are scored
once (the boundary token that starts it and the padding never are); a text longer than the window is
scored in overlapping windows so that every byte after the first half-window has at least half a window of
context. The explanation is the spans (words) whose bytes surprised the model most.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .._core import check_is_fitted
from .._core.params import Rule, interval, options
from ..data.text import (
    N_INPUT_TOKENS,
    N_OUTPUT_TOKENS,
    PAD,
    byte_spans,
    byte_stream,
    byte_windows,
    stream_windows,
    text_tokens,
    token_stream,
)
from ..nn import TrainConfig, init_weights, resolve_device, seeded, train
from ..nn.text import ByteGRU, ByteTransformer, token_nll
from .deep import DEEP_RULES
from .registry import register
from .text_base import TEXT_RULES, Spans, TextBase, shares_of

#: Windows per scoring batch (sorted by length, so that a batch is cut to its longest window).
SCORE_WINDOWS = 256


class WindowScorer(nn.Module):
    """``(windows (w, length + 1) int64, counted (w, length) bool) -> (w,) summed NLL of the counted bytes``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.train(False)

    def per_token(self, windows: torch.Tensor) -> torch.Tensor:
        return token_nll(self.net, windows, PAD)[0]

    def forward(self, windows: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
        nll = self.per_token(windows)
        return (nll * counted[:, : nll.shape[1]]).sum(dim=1)


class ReshuffledStream:
    """Training windows cut afresh every epoch (a :class:`anomalia.nn.BatchSource`): the texts are run
    together in a new order, so the windows' cuts, and which texts share a window, change from epoch to
    epoch; every byte is still seen once per epoch."""

    def __init__(self, texts: np.ndarray, length: int, device: torch.device) -> None:
        self.parts, self.length, self.device = text_tokens(texts), length, device  # encoded once

    def batches(self, batch_size: int, generator: torch.Generator) -> Any:
        order = torch.randperm(len(self.parts), generator=generator).tolist()
        windows = torch.from_numpy(stream_windows(token_stream([self.parts[i] for i in order]), self.length))
        perm = torch.randperm(windows.shape[0], generator=generator)
        for i in range(0, windows.shape[0], batch_size):
            yield windows[perm[i : i + batch_size]].to(self.device)


def _adamw(net: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    try:
        return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)


def _cosine(opt: torch.optim.Optimizer, lr: float, epochs: int, callback: Any) -> Any:
    """A per-epoch callback that sets the learning rate of the next epoch on a cosine from ``lr`` down to
    ``lr / 100`` at the last epoch, then calls the user's ``callback``."""

    def step(epoch: int, train_loss: float, val_loss: float | None) -> None:
        frac = min(epoch / max(epochs - 1, 1), 1.0)
        for group in opt.param_groups:
            group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1.0 + np.cos(np.pi * frac)))
        if callback is not None:
            callback(epoch, train_loss, val_loss)

    return step


@register("text-lm")
class TextLM(TextBase):
    """Byte-level language model trained on normal text; score = mean NLL per byte (nats).

    Parameters
    ----------
    length : int
        Bytes the model reads at once (its window); longer texts are scored in overlapping windows.
    width, layers : int
        Hidden width and stacked layers (GRU layers or transformer blocks).
    heads : int
        Attention heads (transformer only).
    cell : {"gru", "transformer"}
        The network: a GRU (default) or a small pre-norm causal transformer.
    schedule : {"cosine", "constant"}
        Learning rate over the epochs: a cosine from ``lr`` down to ``lr / 100`` at the last epoch (default),
        or constant.
    dropout : float
        Dropout (training only).
    reshuffle : bool
        Cut the training windows afresh every epoch (the texts run together in a new order), so that the
        network does not see the same windows every epoch (default); False keeps one fixed cut.

    The deep-training arguments (``epochs=35``, ``batch_size=32``, ``lr=3e-3``, ``weight_decay=0.01``,
    ``patience=3``, ``validation_fraction=0.1``, ``device``) are those of
    :class:`~anomalia.detectors.DeepDetector`; early stopping watches the loss on held-out normal texts.

    Defaults were chosen without labels (``benchmarks/text_lm_select.py``): among the candidates that fit
    ~200 kB of normal text in at most 150 CPU seconds, the one with the lowest mean NLL on held-out normal
    texts: a 176-wide GRU with dropout 0.1, batches of 32 windows cut afresh every epoch, 35 epochs on the
    cosine schedule (1.746 nats in 126 CPU seconds, against 1.749 with dropout 0.2, 1.784 with fixed windows
    in batches of 32, 1.814 in batches of 64, and 1.996 for the 64-wide two-block transformer; see
    benchmarks/RESULTS.md, "Text").
    """

    parameter_rules: ClassVar[dict[str, list[Rule]]] = {
        **{k: v for k, v in DEEP_RULES.items() if k != "robust"},
        **TEXT_RULES,
        "length": [interval(8, 4096, integer=True)],
        "width": [interval(8, None, integer=True)],
        "layers": [interval(1, None, integer=True)],
        "heads": [interval(1, None, integer=True)],
        "cell": [options("transformer", "gru")],
        "schedule": [options("cosine", "constant")],
        "reshuffle": [options(True, False)],
    }
    test_params: ClassVar[dict[str, Any]] = {"length": 32, "width": 16, "layers": 1, "heads": 2, "epochs": 2}
    update_epochs: ClassVar[int] = 10

    length: int = 64
    width: int = 176
    layers: int = 1
    heads: int = 4
    _: KW_ONLY
    cell: str = "gru"
    schedule: str = "cosine"
    dropout: float = 0.1
    reshuffle: bool = True
    epochs: int = 35
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    patience: int = 3
    validation_fraction: float = 0.1
    device: str = "auto"

    # ------------------------------------------------------------------ training
    def _build(self) -> nn.Module:
        if self.cell == "gru":
            return ByteGRU(N_INPUT_TOKENS, N_OUTPUT_TOKENS, int(self.width), int(self.layers), float(self.dropout))
        return ByteTransformer(
            N_INPUT_TOKENS, N_OUTPUT_TOKENS, int(self.length), int(self.width), int(self.layers), int(self.heads),
            float(self.dropout),
        )

    def _row_loss(self, net: nn.Module, windows: torch.Tensor) -> torch.Tensor:
        nll, mask = token_nll(net, windows, PAD)
        return nll.sum(dim=1) / mask.sum(dim=1).clamp_min(1)

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        self.device_ = resolve_device(self.device)
        for attr in ("net_", "history_"):
            if hasattr(self, attr):
                delattr(self, attr)
        self._train(X, rng, callback)

    def _update(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        self._train(X, rng, callback, epochs=min(self.epochs, self.update_epochs))

    def _train(self, X: np.ndarray, rng: np.random.Generator, callback: Any, epochs: int | None = None) -> None:
        perm = rng.permutation(X.shape[0])
        n_val = round(self.validation_fraction * X.shape[0]) if X.shape[0] >= 20 else 0
        length, dev = int(self.length), self.device_
        if self.reshuffle:
            Xt: Any = ReshuffledStream(X[perm[n_val:]], length, dev)
        else:
            Xt = torch.from_numpy(stream_windows(byte_stream(X[perm[n_val:]]), length)).to(dev)
        Xv = torch.from_numpy(stream_windows(byte_stream(X[perm[:n_val]]), length)).to(dev) if n_val else None
        config = TrainConfig(
            epochs=epochs or self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            trim_fraction=self.contamination or 0.0,  # robust training: the worst windows stay out of the gradient
        )
        with seeded(int(rng.integers(2**31 - 1)), dev) as gen:
            if not hasattr(self, "net_"):
                self.net_ = self._build()
                init_weights(self.net_, gen)
                self.net_.to(dev)
            opt = _adamw(self.net_, float(self.lr), float(self.weight_decay))
            step = _cosine(opt, float(self.lr), config.epochs, callback) if self.schedule == "cosine" else callback
            history = train(self.net_, self._row_loss, Xt, Xv, config, generator=gen, callback=step, optimizer=opt)
        self.history_ = [*getattr(self, "history_", []), history.to_dict()]

    # ------------------------------------------------------------------ scoring
    def scoring_module(self) -> nn.Module:
        """The module that scores windows of texts (:func:`anomalia.data.text.byte_windows`): the summed NLL
        of the counted bytes of each window; a text's score is its windows' sum over its byte count + 1."""
        check_is_fitted(self)
        return WindowScorer(self.net_.eval())

    def _window_nll(self, tokens: np.ndarray) -> list[np.ndarray]:
        """NLL of every target of each window: one array per window, as long as its longest batch-mate."""
        module = self.scoring_module()
        real = (tokens != PAD).sum(axis=1)
        order = np.argsort(real, kind="stable")
        out: list[np.ndarray] = [np.empty(0)] * tokens.shape[0]
        with torch.inference_mode():
            for start in range(0, order.size, SCORE_WINDOWS):
                rows = order[start : start + SCORE_WINDOWS]
                wb = torch.from_numpy(tokens[rows]).to(self.device_)
                nll = module.per_token(wb).cpu().numpy().astype(np.float64)
                for r, v in zip(rows, nll, strict=True):
                    out[r] = v
        return out

    def _per_byte(self, texts: np.ndarray) -> tuple[Any, list[np.ndarray]]:
        """The windows of ``texts`` and each text's surprisal per byte (its bytes, then the end of the text)."""
        w = byte_windows(list(texts), int(self.length))
        nll = self._window_nll(w.tokens)
        per_text = [np.zeros(len(b) + 1) for b in w.data]
        for i in range(w.tokens.shape[0]):
            j = np.flatnonzero(w.counted[i, : nll[i].size])
            per_text[w.text[i]][w.start[i] + j] = nll[i][j]
        return w, per_text

    def _score(self, X: np.ndarray) -> np.ndarray:
        _, per_text = self._per_byte(X)
        return np.asarray([float(v.mean()) for v in per_text], dtype=np.float64)

    def surprisal(self, X: Any) -> list[np.ndarray]:
        """Each text's negative log-likelihood (nats) per UTF-8 byte, then of its end; the score is the mean."""
        check_is_fitted(self)
        texts, _ = self._validate(X, fitting=False)
        return self._per_byte(texts)[1]

    def _spans(self, texts: np.ndarray) -> list[Spans]:
        w, per_text = self._per_byte(texts)
        out = []
        for data, s in zip(w.data, per_text, strict=True):
            total = float(s.sum())
            parts: dict[str, float] = {}
            for a, b in byte_spans(data):
                word = data[a:b].decode("utf-8", errors="replace")
                parts[word] = parts.get(word, 0.0) + float(s[a:b].sum())
            spans = shares_of(parts)
            covered = sum(parts.values())
            scale = covered / total if total > 0 and covered > 0 else 0.0  # whitespace and the end keep the rest
            out.append([(span, share * scale) for span, share in spans])
        return out

    # ------------------------------------------------------------------ state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"]["history"] = self.history_
        meta["state"]["featuriser"] = {"kind": "utf-8 bytes", "boundary_token": 256, "padding_token": PAD}
        arrays.update({f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()})
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        self.device_ = resolve_device(self.device)
        self.history_ = meta["state"].get("history", [])
        net = self._build()
        state = {k.removeprefix("net."): torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("net.")}
        net.load_state_dict(state, strict=True)
        self.net_ = net.to(self.device_).eval()
