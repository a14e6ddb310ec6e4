"""Device choice, local seeding, weight initialisation and batched inference: the torch plumbing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from .._core import ParameterError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, CPU otherwise; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} was asked for but CUDA is not available here; use device='auto'")
    return dev


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Run a block with torch's default generators seeded to ``seed`` and restored afterwards.

    Layers that draw from the default generator (dropout) become reproducible while nothing outside the
    block sees a changed global state. Yields a local generator for the draws we make ourselves.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        yield gen


@contextlib.contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run a block with at most ``n`` torch intra-op threads (no change for None), restored afterwards.

    For pipelines whose own threads (reading, writing) need a core: torch's default of one thread per core
    then makes every thread wait for another.
    """
    before = torch.get_num_threads()
    if n is None or n >= before:
        yield
        return
    if n < 1:
        raise ParameterError(f"threads must be at least 1; got {n}")
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every parameter from ``generator``: Xavier for matrices, zeros for biases, ones for norms."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p, generator=generator)
            elif name.endswith("weight"):
                nn.init.ones_(p)
            else:
                nn.init.zeros_(p)


def to_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """Zero-copy float32 view of ``X`` on CPU (copied only when moving to another device)."""
    t = torch.from_numpy(np.require(X, np.float32, ["C", "W"]))
    return t if device.type == "cpu" else t.to(device, non_blocking=True)


def batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    X: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 65536,
) -> np.ndarray:
    """Apply ``fn`` (tensor in, tensor with one leading row per input row out) to ``X`` in large batches.

    Runs under ``torch.inference_mode``; returns float64 numpy, the scale every score uses.
    """
    Xt = torch.from_numpy(np.require(X, np.float32, ["C", "W"]))  # copies only read-only or non-float32 input
    parts = []
    with torch.inference_mode():
        for start in range(0, Xt.shape[0], batch_size):
            xb = Xt[start : start + batch_size]
            if device.type != "cpu":
                xb = xb.to(device, non_blocking=True)
            parts.append(fn(xb).cpu())
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out.numpy().astype(np.float64)


def batched_parts(
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    X: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 65536,
    above: float | None = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`batched` for ``fn`` giving (scores, parts): every score, and the parts of the rows scoring
    above ``above`` (every row for None), from the same pass. Returns (scores, rows, parts): float64 scores,
    the parts in the network's float32, or ``reduce(parts)`` of each batch (per-row values, rows x m)."""
    Xt = torch.from_numpy(np.require(X, np.float32, ["C", "W"]))
    n = Xt.shape[0]
    scores = np.empty(n, dtype=np.float64)
    every: np.ndarray | None = None  # all rows' parts, written in place (no concatenation)
    rows, parts = [], []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            xb = Xt[start : start + batch_size]
            if device.type != "cpu":
                xb = xb.to(device, non_blocking=True)
            s, p = fn(xb)
            p = p.reshape(p.shape[0], -1)
            scores[start : start + s.shape[0]] = s.cpu().numpy()
            if above is not None or reduce is not None:
                keep = torch.nonzero(s > above).flatten() if above is not None else None
                kept = p if keep is None else p[keep]
                rows.append(np.arange(start, start + s.shape[0]) if keep is None else keep.cpu().numpy() + start)
                parts.append((kept if reduce is None else reduce(kept.float())).cpu().numpy())
                continue
            if every is None:
                    every = np.empty((n, p.shape[1]), dtype=np.float32)
            every[start : start + p.shape[0]] = p.cpu().numpy()
    if above is None and reduce is None:
        return scores, np.arange(n, dtype=np.int64), np.empty((0, 0), np.float32) if every is None else every
    if not parts or sum(p.shape[0] for p in parts) == 0:
        return scores, np.zeros(0, np.int64), np.empty((0, 0), np.float32)
    return scores, np.concatenate(rows).astype(np.int64), np.concatenate(parts)
