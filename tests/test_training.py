"""The one training loop: early stopping, robust trimming, local seeding, progress callback."""

from __future__ import annotations

import pytest
import torch

from anomalia._core import ParameterError
from anomalia.nn import DenseAutoEncoder, TrainConfig, init_weights, intra_op_threads, reduce_loss, seeded, train


def _mse(net: torch.nn.Module, xb: torch.Tensor) -> torch.Tensor:
    return (net(xb) - xb).pow(2).mean(dim=1)


def test_trimmed_loss_leaves_out_the_largest() -> None:
    per_row = torch.tensor([1.0, 1.0, 1.0, 100.0])
    assert reduce_loss(per_row, 0.0) == 25.75
    assert reduce_loss(per_row, 0.25) == 1.0


def test_early_stopping_keeps_the_best_epoch_and_reports_progress() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 8, generator=g)
    Xv = torch.randn(128, 8, generator=g)
    net = DenseAutoEncoder(8, (16, 2))
    init_weights(net, g)
    seen: list[tuple[int, float, float | None]] = []
    hist = train(
        net,
        _mse,
        X,
        Xv,
        TrainConfig(epochs=200, patience=3, lr=1e-2),
        generator=g,
        callback=lambda e, t, v: seen.append((e, t, v)),
    )
    assert hist.stopped_early and len(seen) == len(hist.train_loss) < 200
    best = min(hist.val_loss)
    assert hist.val_loss[hist.best_epoch - 1] == best
    net.eval()
    with torch.inference_mode():
        assert abs(float(_mse(net, Xv).mean()) - best) < 1e-5  # the kept weights are the best epoch's


def test_seeded_block_is_reproducible_and_leaves_global_state_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    outs = []
    for _ in range(2):
        with seeded(7, torch.device("cpu")) as g:
            net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
            init_weights(net, g)
            net.train()
            outs.append(net(torch.ones(3, 4)))
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(torch.random.get_rng_state(), before)


def test_intra_op_threads_caps_and_restores() -> None:
    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with intra_op_threads(before + 4):  # never raises the count
        assert torch.get_num_threads() == before
    with pytest.raises(ParameterError, match="threads must be at least 1"), intra_op_threads(0):
        pass
    assert torch.get_num_threads() == before


def test_robust_training_ignores_gross_outliers() -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(900, 6, generator=g) @ torch.randn(6, 6, generator=g) * 0.3
    outliers = 30 + 10 * torch.randn(100, 6, generator=g)
    X = torch.cat([clean, outliers])
    losses = {}
    for trim in (0.0, 0.15):
        net = DenseAutoEncoder(6, (16, 3))
        init_weights(net, torch.Generator().manual_seed(1))
        train(net, _mse, X, None, TrainConfig(epochs=30, trim_fraction=trim, lr=3e-3), generator=g)
        with torch.inference_mode():
            losses[trim] = float(_mse(net, clean).mean())
    assert losses[0.15] < 0.5 * losses[0.0]
