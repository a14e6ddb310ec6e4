"""What every series detector shares: series input, sliding windows, one score per time step, a calibration
split that is contiguous in time, and streaming scoring that uses only the past.

A detector reads a sample of ``span`` consecutive steps (``window`` steps, plus the step to predict for
forecasters) and gives it a score; that score belongs to the sample's last step. The first ``span - 1``
steps of a series have no full sample before them: they get the warm-up score
:data:`anomalia.data.windows.WARMUP_SCORE` (0.0, "no evidence of an anomaly"), p-value 1 and are never
flagged. Subclasses build the network and say how a sample is lost and scored (``_sample_errors``,
optionally ``_sample_loss`` and ``_sample_score``); training goes through ``anomalia.nn.train``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._core import InputError, check_fit_input, check_is_fitted, check_schema
from .._core.params import instance_of, interval, options
from ..data.series import FILL_OPTIONS, Series, check_step, prepare_series
from ..data.windows import WARMUP_SCORE, per_step, sliding_windows
from ..nn import train
from ..nn.runtime import init_weights, seeded
from ..scoring.smoothing import ewma
from .base import REPLAY_ROWS, BaseDetector, normalise_shares
from .deep import DEEP_RULES, DeepDetector

SERIES_RULES = {
    **DEEP_RULES,
    "window": [interval(2, None, integer=True)],
    "train_stride": [interval(1, None, integer=True)],
    "smoothing": [interval(0, None, integer=True)],
    "time_column": [instance_of(str, text="a column name"), options(None)],
    "resample": [instance_of(str, text="a pandas step such as '5min'"), options(None)],
    "fill": [options(*FILL_OPTIONS)],
}

#: Values of one scoring batch at most (windows x steps x channels).
SCORE_VALUES = 1 << 22


class SeriesDetector(DeepDetector):
    """Base of the series detectors (see the module docstring).

    Common parameters
    -----------------
    window : int
        Steps each sample reads.
    train_stride : int
        Train on every ``train_stride``-th window only (faster on long series; 1 = all).
    smoothing : int
        Span of the causal EWMA applied to the per-step scores (Hundman et al. 2018); 0 = none.
    time_column : str, optional
        Timestamp column of DataFrame input (a DatetimeIndex is used without it).
    resample : str, optional
        Put the series on a regular grid of this pandas step (``"5min"``) by averaging; saved with the model.
    fill : {"error", "interpolate", "ffill"}
        What to do with missing values (and steps left empty by ``resample``); saved with the model.
    """

    #: Steps a sample reads beyond ``window`` (1 for forecasters: the step they predict).
    target_steps: ClassVar[int] = 0
    update_epochs: ClassVar[int] = 10

    window: int
    train_stride: int
    smoothing: int
    time_column: str | None
    resample: str | None
    fill: str

    @classmethod
    def _contract_data(cls, rng: np.random.Generator, n: int) -> np.ndarray:
        t = np.arange(n)
        base = np.stack([np.sin(2 * np.pi * t / 16), np.cos(2 * np.pi * t / 16), np.sin(2 * np.pi * t / 7)], axis=1)
        return (base + 0.1 * rng.normal(size=base.shape)).astype(np.float32)

    @property
    def span(self) -> int:
        """Steps of one sample: ``window`` plus the predicted step of forecasters."""
        return int(self.window) + self.target_steps

    # ---------------------------------------------------------------- hooks
    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        """Non-negative error per channel of a batch of standardised samples (batch, span, channels)."""
        raise NotImplementedError

    def _sample_loss(self, net: nn.Module, wb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self._sample_errors(net, wb).mean(dim=1)

    def _sample_score(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return self._sample_errors(net, wb).mean(dim=1)

    # ---------------------------------------------------------------- input
    def _series(self, X: Any, name: str = "X") -> Series:
        if isinstance(X, Series):
            return X
        return prepare_series(X, time_column=self.time_column, resample=self.resample, fill=self.fill, name=name)

    def _validate(self, X: Any, *, fitting: bool, finite: bool = True) -> tuple[np.ndarray, Any]:
        s = self._series(X)
        if fitting:
            check_fit_input(s.values)
        else:
            check_schema(s.schema, self.schema_)
            check_step(s, getattr(self, "step_", None))
        return s.values, s.schema

    def _checked(self, X: Any) -> Series:
        check_is_fitted(self)
        s = self._series(X)
        self._validate(s, fitting=False)
        return s

    def _split(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Train on the first part, calibrate on the last: contiguous in time, never shuffled.

        The calibration rows start ``span - 1`` steps early so that every calibration step has a full
        window before it; those context steps are scored but not used as calibration scores.
        """
        span = self.span
        n_cal = min(max(1, round(self.calibration_fraction * n)), REPLAY_ROWS - span + 1)
        n_train = n - n_cal
        if n_train < 2 * span:
            need = int(np.ceil((2 * span + 1) / (1.0 - self.calibration_fraction)))
            raise InputError(
                f"the series has {n} steps; with window={self.window} it needs at least about {need} (windows to "
                f"train on plus {self.calibration_fraction:.0%} held out for calibration). Pass a longer series or "
                "a smaller window"
            )
        return np.arange(n_train), np.arange(n_train - span + 1, n)

    # ---------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, *, callback: Any = None) -> SeriesDetector:
        """Learn normal behaviour from a series of normal data (see :meth:`BaseDetector.fit`).

        The first ``1 - calibration_fraction`` of the steps train the network (the last part of those,
        ``validation_fraction``, stops training early); the last ``calibration_fraction`` calibrates.
        """
        self._check_params()
        series = self._series(X)
        super().fit(series, callback=callback)
        self.step_ = series.step
        self._remember(series, series.values[: self.n_train_rows_][-REPLAY_ROWS:])
        return self

    def _remember(self, series: Series, replay: np.ndarray) -> None:
        self.replay_ = np.ascontiguousarray(replay)
        self.context_ = np.ascontiguousarray(series.values[-(self.span - 1) :])
        self.last_time_ = None if series.index is None else series.index[-1]

    def _calibrate(self, calibration_scores: np.ndarray) -> None:
        scores = calibration_scores[self.span - 1 :]
        self.ewma_state_ = float(calibration_scores[-1]) if self.smoothing > 1 else None
        super()._calibrate(scores)

    def partial_fit(self, X: Any, y: Any = None, *, callback: Any = None) -> SeriesDetector:
        """Keep learning from a new stretch of normal series ``X`` that follows the data seen so far.

        Training continues from the current weights on the windows of ``X`` and of the most recent earlier
        normal steps (``replay_``); calibration uses the old and the new held-out steps.
        """
        if not hasattr(self, "schema_"):
            return self.fit(X, callback=callback)
        series = self._checked(X)
        arr = series.values
        self.n_updates_ += 1
        rng = np.random.default_rng([self.seed_, self.n_updates_])
        train_idx, cal_idx = self._split(arr.shape[0], rng)
        new_train = arr[train_idx]
        self._update([new_train, self.replay_], rng, callback)
        self.n_train_rows_ += int(train_idx.size)
        skip = self.span - 1
        old = self._score(self.calibration_rows_)[skip:]
        self.calibration_rows_ = np.ascontiguousarray(arr[cal_idx])
        new_scores = self._score(self.calibration_rows_)
        BaseDetector._calibrate(self, np.r_[old, new_scores[skip:]])
        self.ewma_state_ = float(new_scores[-1]) if self.smoothing > 1 else None
        self._remember(series, np.concatenate([self.replay_, new_train])[-REPLAY_ROWS:])
        return self

    def _train(
        self, X: np.ndarray | list[np.ndarray], rng: np.random.Generator, callback: Any, epochs: int | None = None
    ) -> None:
        segments = [self.scaler_.transform(s) for s in (X if isinstance(X, list) else [X]) if s.shape[0] >= self.span]
        span, dev = self.span, self.device_
        views = [torch.from_numpy(sliding_windows(z, span, stride=self.train_stride)) for z in segments]
        W = views[0] if len(views) == 1 else torch.cat(views)
        n_w = W.shape[0]
        n_val = round(self.validation_fraction * n_w) if n_w >= 20 else 0
        gap = -(-(span - 1) // self.train_stride) if n_val else 0  # windows overlapping the validation part
        n_fit = max(1, n_w - n_val - gap)
        W_train, W_val = W[:n_fit], (W[n_w - n_val :] if n_val else None)
        if dev.type != "cpu":
            W_train = W_train.to(dev)
            W_val = None if W_val is None else W_val.to(dev)
        with seeded(int(rng.integers(2**31 - 1)), dev) as gen:
            if not hasattr(self, "net_"):
                self.net_ = self._build(segments[0].shape[1])
                init_weights(self.net_, gen)
                self.net_.to(dev)
            history = train(
                self.net_,
                lambda net, wb: self._sample_loss(net, wb, gen),
                W_train,
                W_val,
                self._config(epochs),
                generator=gen,
                callback=callback,
            )
        self.history_ = [*getattr(self, "history_", []), history.to_dict()]

    # ---------------------------------------------------------------- scoring
    def _per_sample(self, values: np.ndarray, fn: Any) -> np.ndarray:
        """``fn(net, standardised sample batch)`` over every window of ``values``; float64 numpy."""
        W = sliding_windows(self.scaler_.transform(values), self.span)
        batch = max(64, SCORE_VALUES // (self.span * values.shape[1]))
        net = self.net_.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, W.shape[0], batch):
                wb = torch.from_numpy(np.ascontiguousarray(W[start : start + batch])).to(self.device_)
                parts.append(fn(net, wb).cpu())
        return torch.cat(parts).numpy().astype(np.float64)

    def _raw_scores(self, values: np.ndarray) -> np.ndarray:
        n = values.shape[0]
        if n < self.span:
            return np.full(n, WARMUP_SCORE)
        return per_step(self._per_sample(values, self._sample_score), n, self.span)

    def _smooth(self, raw: np.ndarray, start: int, initial: float | None = None) -> np.ndarray:
        if self.smoothing <= 1 or start >= raw.size:
            return raw
        out = raw.copy()
        out[start:] = ewma(raw[start:], self.smoothing, initial=initial)
        return out

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._smooth(self._raw_scores(X), self.span - 1)

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        if n < self.span:
            return np.zeros_like(X, dtype=np.float64)
        return per_step(self._per_sample(X, self._sample_errors), n, self.span)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score per time step, aligned with the rows of ``X``; warm-up steps get 0.0."""
        s = self._checked(X)
        return s.to_rows(self._score(s.values))

    def explain(self, X: Any) -> np.ndarray:
        """Each channel's share of each step's score, shape (n_steps, n_channels); rows sum to 1.

        The share is the channel's part of the error over the sample that ends at the step; warm-up steps
        get equal shares.
        """
        s = self._checked(X)
        return normalise_shares(s.to_rows(self._feature_scores(s.values)))

    def update(self, X_new: Any) -> np.ndarray:
        """Score new steps that follow everything seen so far, using only the past, and remember them.

        Streaming use: call with each new batch of points (one or many). Each step is scored from the
        window that ends at it, whose earlier steps come from previous calls (or the end of the fitted
        series); the EWMA smoothing carries on from the previous call. The model itself does not change;
        use :meth:`partial_fit` to train on new normal data.
        """
        s = self._checked(X_new)
        if s.index is not None and self.last_time_ is not None and s.index[0] <= pd.Timestamp(self.last_time_):
            raise InputError(
                f"X_new starts at {s.index[0]}, not after the last step seen ({self.last_time_}); pass only new points"
            )
        ctx = self.context_
        buf = np.concatenate([ctx, s.values]) if ctx.size else s.values
        raw = self._raw_scores(buf)[ctx.shape[0] :]
        first_real = max(0, self.span - 1 - ctx.shape[0])
        out = self._smooth(raw, first_real, self.ewma_state_ if first_real == 0 else None)
        if self.smoothing > 1 and out.size > first_real:
            self.ewma_state_ = float(out[-1])
        self.context_ = np.ascontiguousarray(buf[-(self.span - 1) :])
        if s.index is not None:
            self.last_time_ = s.index[-1]
        return s.to_rows(out)

    # ---------------------------------------------------------------- state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["series"] = {
            "step": None if self.step_ is None else str(self.step_),
            "last_time": None if self.last_time_ is None else pd.Timestamp(self.last_time_).isoformat(),
            "ewma_state": self.ewma_state_,
        }
        return meta, {**arrays, "series.context": self.context_}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        s = meta["series"]
        self.step_ = None if s["step"] is None else pd.Timedelta(s["step"])
        self.last_time_ = None if s["last_time"] is None else pd.Timestamp(s["last_time"])
        self.ewma_state_ = s["ewma_state"]
        self.context_ = arrays["series.context"].copy()
