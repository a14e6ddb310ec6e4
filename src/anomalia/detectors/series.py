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

from dataclasses import KW_ONLY
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._core import InputError, check_fit_input, check_is_fitted, check_schema
from .._core.params import instance_of, interval, options
from ..data.series import FILL_OPTIONS, Series, check_step, prepare_series
from ..data.timestamps import TIME_UNITS, TimeParsing, parse_timestamps
from ..data.windows import WARMUP_SCORE, per_step, sliding_windows
from ..nn import Scorer, init_weights, seeded, train
from ..scoring.smoothing import ewma
from .base import REPLAY_ROWS, BaseDetector, Reduce, apply_reduce, normalise_shares
from .deep import DEEP_RULES, DeepDetector
from .stream_state import StreamState

SERIES_RULES = {
    **DEEP_RULES,
    "window": [interval(2, None, integer=True)],
    "train_stride": [interval(1, None, integer=True)],
    "smoothing": [interval(0, None, integer=True)],
    "time_column": [instance_of(str, text="a column name"), options(None)],
    "resample": [instance_of(str, text="a pandas step such as '5min'"), options(None)],
    "fill": [options(*FILL_OPTIONS)],
    "date_format": [instance_of(str, text="a strptime format such as '%d.%m.%Y %H:%M'"), options(None)],
    "dayfirst": [options(None, True, False)],
    "time_unit": [options(None, *TIME_UNITS)],
}

#: Values of one scoring batch at most (windows x steps x channels).
SCORE_VALUES = 1 << 22


class SeriesDetector(DeepDetector):
    """Base of the series detectors (see the module docstring).

    Common parameters (``window`` first; the others keyword-only)
    ---------------------------------------------------------------
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
    date_format : str, optional
        strptime format of a text ``time_column`` (``"%d.%m.%Y %H:%M"``); None = inferred from the values.
    dayfirst : bool, optional
        Read ``NN/NN/YYYY`` dates day-first; None = decided from the values (a number above 12 first or second).
    time_unit : {"s", "ms", "us", "ns"}, optional
        Unit of a numeric (Unix time) ``time_column``; None = inferred from the magnitude of the values.
        However it was decided, the parsing used at fit is kept (``time_parsing_``, its ``how`` in words) and
        new data is read the same way.
    dropout : float
        Dropout in the network.

    Training defaults differ from the tabular ones: ``epochs=30``, ``batch_size=128``, ``patience=5``.

    Streaming: :meth:`score_stream` scores new points from a :class:`StreamState` that the caller holds
    (one per stream) and returns the next state; the detector does not change. :meth:`update` is the
    convenience that keeps one such state on the detector (``stream_``), starting where the fitted series
    ended (``stream_start_``).
    """

    #: Steps a sample reads beyond ``window`` (1 for forecasters: the step they predict).
    target_steps: ClassVar[int] = 0
    update_epochs: ClassVar[int] = 10
    #: Values (windows x steps x channels) per scoring chunk.
    score_values: ClassVar[int] = SCORE_VALUES
    input_kind: ClassVar[str] = "series"

    window: int = 32
    _: KW_ONLY
    smoothing: int = 0
    train_stride: int = 1
    time_column: str | None = None
    resample: str | None = None
    fill: str = "error"
    date_format: str | None = None
    dayfirst: bool | None = None
    time_unit: str | None = None
    dropout: float = 0.0
    epochs: int = 30
    batch_size: int = 128
    patience: int = 5

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

    def _sample_parts(self, net: nn.Module, wb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, per-channel errors) of standardised samples, from one forward pass."""
        errors = self._sample_errors(net, wb)
        return errors.mean(dim=1), errors

    def _sample_expected(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor | None:
        """The standardised values the network expected at the last step of each sample (batch, channels):
        the forecast, or the reconstruction of that step; None when it makes no such prediction."""
        return None

    # ---------------------------------------------------------------- input
    def _series(self, X: Any, name: str = "X", *, fitting: bool = False) -> Series:
        if isinstance(X, Series):
            return X
        return prepare_series(
            X,
            time_column=self.time_column,
            resample=self.resample,
            fill=self.fill,
            name=name,
            date_format=self.date_format,
            dayfirst=self.dayfirst,
            time_unit=self.time_unit,
            parsing=None if fitting else getattr(self, "time_parsing_", None),
        )

    def as_series(self, X: Any) -> Series:
        """``X`` read as this detector reads it (time column, resampling, fill and time parsing as at fit)."""
        return self._series(X)

    def timestamps(self, X: Any) -> pd.DatetimeIndex | None:
        """The time axis of ``X`` read as this detector reads it (its time column, as at fit), one per row."""
        column = self.time_column
        if column is None or not hasattr(X, "columns") or column not in X.columns:
            return pd.DatetimeIndex(X.index) if isinstance(getattr(X, "index", None), pd.DatetimeIndex) else None
        parse = {"date_format": self.date_format, "dayfirst": self.dayfirst, "time_unit": self.time_unit}
        return parse_timestamps(X[column], column=column, fitted=getattr(self, "time_parsing_", None), **parse)[0]

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
    def fit(self, X: Any, y: Any = None, *, callback: Any = None, labels: Any = None) -> SeriesDetector:
        """Learn normal behaviour from a series of normal data (see :meth:`BaseDetector.fit`).

        The first ``1 - calibration_fraction`` of the steps train the network (the last part of those,
        ``validation_fraction``, stops training early); the last ``calibration_fraction`` calibrates.

        ``labels`` (optional, one 0/1 per row of ``X``, 1 = a known anomaly) keeps every window that holds a
        labelled step out of the training loss and out of the calibration scores; ``n_excluded_steps_``
        counts the labelled steps and ``n_excluded_windows_`` the training and calibration windows left out.
        """
        self._check_params()
        series = self._series(X, fitting=True)
        self.time_parsing_ = series.parsing
        self._labelled = None if labels is None else self._step_labels(series, labels)
        self.n_excluded_windows_ = 0
        try:
            super().fit(series, callback=callback)
        finally:
            mask, self._labelled = self._labelled, None
        self.n_excluded_steps_ = 0 if mask is None else int(mask.sum())
        self.step_ = series.step
        train = series.values[: self.n_train_rows_]
        if mask is not None:
            train = train[~mask[: self.n_train_rows_]]
        self._remember(series, train[-REPLAY_ROWS:])
        return self

    @staticmethod
    def _step_labels(series: Series, labels: Any) -> np.ndarray:
        """Row labels -> one bool per step of ``series`` (a resampled step is labelled when any of its rows is)."""
        y = np.asarray(labels)
        n_rows = series.values.shape[0] if series.positions is None else series.positions.size
        if y.ndim != 1 or y.size != n_rows:
            raise InputError(f"labels must hold one 0/1 per row of the series ({n_rows}); got shape {y.shape}")
        if not np.isin(y, (0, 1, True, False)).all():
            raise InputError("labels must be 0 (normal) or 1 (anomaly)")
        y = y.astype(bool)
        if series.positions is None:
            return y
        steps = np.zeros(series.values.shape[0], dtype=bool)
        np.logical_or.at(steps, series.positions, y)
        return steps

    def _window_has_label(self, start: int, n_steps: int, stride: int = 1) -> np.ndarray | None:
        """For the windows of ``n_steps`` steps from step ``start`` on (every ``stride``-th): does it hold a
        labelled step? None when the fit has no labels."""
        mask = getattr(self, "_labelled", None)
        if mask is None:
            return None
        seg = mask[start : start + n_steps]
        c = np.r_[0, np.cumsum(seg)]
        first = np.arange(0, seg.size - self.span + 1, stride)
        return (c[first + self.span] - c[first]) > 0

    def _remember(self, series: Series, replay: np.ndarray) -> None:
        self.replay_ = np.ascontiguousarray(replay)
        last = None if series.index is None else pd.Timestamp(series.index[-1])
        context = np.ascontiguousarray(series.values[-(self.span - 1) :])
        threshold = None
        if self.threshold_ is not None and self.threshold_.streaming:
            threshold = self.threshold_.initial_state().to_dict()
        self.stream_start_ = StreamState(context, self._end_ewma, last, threshold)
        self.stream_ = self.stream_start_

    @property
    def context_(self) -> np.ndarray:
        """The last steps seen by :meth:`update` (``stream_.context``)."""
        check_is_fitted(self)
        return self.stream_.context

    def _calibrate(self, calibration_scores: np.ndarray) -> None:
        scores = calibration_scores[self.span - 1 :]
        bad = self._window_has_label(self.n_train_rows_ - self.span + 1, scores.size + self.span - 1)
        if bad is not None and bad.any():
            if bad.all():
                raise InputError(
                    "every held-out calibration step has a labelled anomaly in its window; label fewer steps, "
                    "or pass a series whose last part is normal"
                )
            self.n_excluded_windows_ += int(bad.sum())
            scores = scores[~bad]
        # the calibration steps end the fitted series: their last smoothed score is where a stream carries on
        self._end_ewma = float(calibration_scores[-1]) if self.smoothing > 1 else None
        super()._calibrate(scores)

    def partial_fit(self, X: Any, y: Any = None, *, callback: Any = None) -> SeriesDetector:
        """Keep learning from a new stretch of normal series ``X`` that follows the data seen so far.

        Training continues from the current weights on the windows of ``X`` and of the most recent earlier
        normal steps (``replay_``, when the detector holds them); calibration uses the old and the new
        held-out steps (the saved calibration scores when the old steps are not kept).
        """
        if not hasattr(self, "schema_"):
            return self.fit(X, callback=callback)
        series = self._checked(X)
        arr = series.values
        self.n_updates_ += 1
        rng = np.random.default_rng([self.seed_, self.n_updates_])
        train_idx, cal_idx = self._split(arr.shape[0], rng)
        new_train = arr[train_idx]
        rows = hasattr(self, "replay_")
        self._update([new_train, self.replay_] if rows else [new_train], rng, callback)
        self.n_train_rows_ += int(train_idx.size)
        skip = self.span - 1
        old = self._score(self.calibration_rows_)[skip:] if rows else self.calibrator_.scores
        self.calibration_rows_ = np.ascontiguousarray(arr[cal_idx])
        new_scores = self._score(self.calibration_rows_)
        BaseDetector._calibrate(self, np.r_[old, new_scores[skip:]])
        self._end_ewma = float(new_scores[-1]) if self.smoothing > 1 else None
        previous = self.replay_ if rows else new_train[:0]
        self._remember(series, np.concatenate([previous, new_train])[-REPLAY_ROWS:])
        return self

    def _train(
        self, X: np.ndarray | list[np.ndarray], rng: np.random.Generator, callback: Any, epochs: int | None = None
    ) -> None:
        segments = [self.scaler_.transform(s) for s in (X if isinstance(X, list) else [X]) if s.shape[0] >= self.span]
        span, dev = self.span, self.device_
        views = [torch.from_numpy(sliding_windows(z, span, stride=self.train_stride)) for z in segments]
        whole = len(segments) == 1 and segments[0].shape[0] == self.n_train_rows_  # the fit's first round
        bad = self._window_has_label(0, segments[0].shape[0], self.train_stride) if whole else None
        if bad is not None and bad.any():
            if bad.all():
                raise InputError("every training window holds a labelled anomaly; fit needs normal stretches")
            self.n_excluded_windows_ += int(bad.sum())
            views = [views[0][torch.from_numpy(~bad)]]
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
    def scoring_module(self, *, parts: bool = False) -> nn.Module:
        """The module that scores raw samples (batch, span, channels): standardise -> network -> score.

        With ``parts=True`` it returns ``(scores, per-channel errors)`` from the same forward pass.
        """
        check_is_fitted(self)
        dev = self.device_
        return Scorer(
            self.net_.eval(),
            torch.from_numpy(self.scaler_.mean).to(dev),
            torch.from_numpy(self.scaler_.scale).to(dev),
            self._sample_score,
            self._sample_parts if parts else None,
            flatten=False,
        )

    def _per_sample(self, values: np.ndarray, *, parts: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The scoring module over every window of ``values``: scores (and parts) per window, float64."""
        W = sliding_windows(values, self.span)
        batch = max(64, self.score_values // (self.span * values.shape[1]))
        module = self.scoring_module(parts=parts)
        scores, errors = [], []
        with torch.inference_mode():
            for start in range(0, W.shape[0], batch):
                wb = torch.from_numpy(np.ascontiguousarray(W[start : start + batch])).to(self.device_)
                out = module(wb)
                if parts:
                    errors.append(out[1].cpu())
                    out = out[0]
                scores.append(out.cpu())
        return _float64(scores), (_float64(errors) if parts else None)

    def _raw_scores(self, values: np.ndarray) -> np.ndarray:
        n = values.shape[0]
        if n < self.span:
            return np.full(n, WARMUP_SCORE)
        return per_step(self._per_sample(values, parts=False)[0], n, self.span)

    def _smooth(self, raw: np.ndarray, start: int, initial: float | None = None) -> np.ndarray:
        if self.smoothing <= 1 or start >= raw.size:
            return raw
        out = raw.copy()
        out[start:] = ewma(raw[start:], self.smoothing, initial=initial)
        return out

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._smooth(self._raw_scores(X), self.span - 1)

    def _scores_and_parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = X.shape[0]
        if n < self.span:
            return np.full(n, WARMUP_SCORE), np.zeros_like(X, dtype=np.float64)
        scores, errors = self._per_sample(X, parts=True)
        assert errors is not None
        raw = per_step(scores, n, self.span)
        return self._smooth(raw, self.span - 1), per_step(errors, n, self.span)

    def _feature_scores(self, X: np.ndarray) -> np.ndarray:
        return self._scores_and_parts(X)[1]

    def _learn_normal_parts(self, rows: np.ndarray, skip: int = 0) -> None:
        super()._learn_normal_parts(rows, max(skip, self.span - 1))  # the first steps are context

    def expected(self, X: Any) -> np.ndarray | None:
        """The value of each channel the model expected at each step (its forecast, or its reconstruction of
        the step from the window ending there), in the series' units, aligned with the rows of ``X``; NaN for
        the warm-up steps. None for a detector that makes no such prediction."""
        s = self._checked(X)
        values = s.values
        n, span = values.shape[0], self.span
        out = np.full(values.shape, np.nan)
        if n < span:
            return s.to_rows(out)
        W = sliding_windows(self.scaler_.transform(values), span)
        batch = max(64, SCORE_VALUES // (span * values.shape[1]))
        net = self.net_.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, W.shape[0], batch):
                wb = torch.from_numpy(np.ascontiguousarray(W[start : start + batch])).to(self.device_)
                e = self._sample_expected(net, wb)
                if e is None:
                    return None
                parts.append(e.cpu())
        z = _float64(parts)
        out[span - 1 :] = z * self.scaler_.scale.astype(np.float64) + self.scaler_.mean
        return s.to_rows(out)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score per time step, aligned with the rows of ``X``; warm-up steps get 0.0."""
        s = self._checked(X)
        return s.to_rows(self._score(s.values))

    def score_parts(
        self, X: Any, *, above: float | None = None, reduce: Reduce | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Scores per step and, from the same pass, the per-channel parts of the steps above ``above``."""
        s = self._checked(X)
        scores, parts = self._scores_and_parts(s.values)
        scores, parts = s.to_rows(scores), s.to_rows(parts)
        rows = np.arange(scores.size) if above is None else np.flatnonzero(scores > above)
        return scores, rows, apply_reduce(reduce, parts[rows])

    def explain(self, X: Any) -> np.ndarray:
        """Each channel's share of each step's score, shape (n_steps, n_channels); rows sum to 1.

        The share is the channel's part of the error over the sample that ends at the step; warm-up steps
        get equal shares.
        """
        s = self._checked(X)
        return normalise_shares(s.to_rows(self._feature_scores(s.values)))

    # ---------------------------------------------------------------- streaming
    def new_stream(self) -> StreamState:
        """The state of a stream that starts now, with no history (its first ``span - 1`` steps warm up)."""
        check_is_fitted(self)
        threshold = self.stream_start_.threshold
        return StreamState(np.zeros((0, self.n_features_in_), np.float32), None, None, threshold)

    def score_stream(self, X_new: Any, state: StreamState) -> tuple[np.ndarray, StreamState]:
        """Scores of new points that follow ``state``, and the state after them; nothing else changes.

        Each step is scored from the window that ends at it, whose earlier steps come from ``state`` (the
        stream's history); the EWMA smoothing carries on from it. Thread-safe: many streams may be scored
        concurrently with one detector, each with its own state. Start a stream with :meth:`new_stream`
        (no history) or ``stream_start_`` (right after the fitted series).
        """
        s = self._checked(X_new)
        if s.index is not None and state.last_time is not None and s.index[0] <= pd.Timestamp(state.last_time):
            raise InputError(
                f"X_new starts at {s.index[0]}, not after the last step seen ({state.last_time}); pass only new points"
            )
        ctx = state.context
        buf = np.concatenate([ctx, s.values]) if ctx.size else s.values
        raw = self._raw_scores(buf)[ctx.shape[0] :]
        first_real = max(0, self.span - 1 - ctx.shape[0])
        out = self._smooth(raw, first_real, state.ewma if first_real == 0 else None)
        ewma_level = float(out[-1]) if self.smoothing > 1 and out.size > first_real else state.ewma
        after = state.evolve(
            context=np.ascontiguousarray(buf[-(self.span - 1) :]),
            ewma=ewma_level,
            last_time=state.last_time if s.index is None else pd.Timestamp(s.index[-1]),
            n_seen=state.n_seen + int(out.size),
        )
        return s.to_rows(out), after

    def decide_stream(self, scores: np.ndarray, state: StreamState) -> tuple[np.ndarray, StreamState]:
        """Decisions for a stream's scores: a streaming threshold (SPOT / DSPOT) moves with the stream, its
        state carried in ``state``; any other threshold decides as :meth:`decide`."""
        threshold = self.fitted_threshold()
        if not threshold.streaming:
            return threshold.predict(scores), state
        from ..scoring import SPOTState

        current = threshold.initial_state() if state.threshold is None else SPOTState.from_dict(state.threshold)
        result, after = threshold.step(scores, current)
        return result.flags, state.evolve(threshold=after.to_dict())

    def update(self, X_new: Any) -> np.ndarray:
        """Score new steps that follow everything seen so far, using only the past, and remember them.

        The convenience form of :meth:`score_stream` with the detector's own state ``stream_``: call it
        with each new batch of points (one or many); the EWMA smoothing carries on from the previous call.
        The model itself does not change; use :meth:`partial_fit` to train on new normal data.
        """
        check_is_fitted(self)
        scores, self.stream_ = self.score_stream(X_new, self.stream_)
        return scores

    # ---------------------------------------------------------------- state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"]["series"] = {
            "step": None if self.step_ is None else str(self.step_),
            "stream": self.stream_.to_dict(),
            "stream_start": self.stream_start_.to_dict(),
            "time_parsing": None if self.time_parsing_ is None else self.time_parsing_.to_dict(),
        }
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        s = meta["state"]["series"]
        self.step_ = None if s["step"] is None else pd.Timedelta(s["step"])
        if "time_parsing" in s:
            self.time_parsing_ = None if s["time_parsing"] is None else TimeParsing.from_dict(s["time_parsing"])
        else:  # saved before the parsing was kept: read a time column as pandas.to_datetime does
            self.time_parsing_ = TimeParsing.from_dict(None) if self.time_column is not None else None
        if "stream" in s:
            self.stream_ = StreamState.from_dict(s["stream"])
            self.stream_start_ = StreamState.from_dict(s["stream_start"])
        else:  # anomalia 0.1: one stream, its context saved as an array
            last = None if s["last_time"] is None else pd.Timestamp(s["last_time"])
            self.stream_ = StreamState(arrays["series.context"].copy(), s["ewma_state"], last)
            self.stream_start_ = self.stream_


def _float64(parts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(parts).numpy().astype(np.float64)
