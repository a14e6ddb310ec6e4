"""Training on more rows than memory holds: ``anomalia fit DATASET/ --stream``.

The dataset's Parquet row groups are the unit of reading. One pass first draws what must be in memory: a
uniform sample of training rows (the encoder and the standardisation are fitted on it) and the held-out
rows (a fixed share of every row group, never trained on: calibration and early stopping). Each epoch
then reads the row groups in a new random order into a shuffle buffer of ``buffer_rows`` rows and hands
shuffled mini-batches to the ONE training loop (:func:`anomalia.nn.training.train`, through its
``BatchSource`` hook); memory is bounded by the buffer and one row group, whatever the dataset's size.
Calibration, the threshold and the saved folder are those of an ordinary fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .._core import InputError
from ..data import TabularEncoder, as_labels
from ..detectors.base import MAX_CALIBRATION_ROWS, REPLAY_ROWS
from ..detectors.deep import DeepDetector
from ..detectors.scaling import Standardizer
from ..model import Model
from ..nn import init_weights, resolve_device, seeded, to_tensor
from ..nn.training import train
from ..workflows.fit import FitResult, make_fit_detector
from .datasets import Partition, check_columns, discover

#: Rows the shuffle buffer holds by default (a few MB of float32 features).
BUFFER_ROWS = 65536
#: Training rows the encoder and the standardisation are fitted on.
SAMPLE_ROWS = 50_000
#: Held-out rows kept at most: calibration (5,000) plus early stopping.
HELD_OUT_ROWS = 25_000


@dataclass(frozen=True)
class RowGroup:
    part: Partition
    index: int
    n_rows: int
    number: int  # position in the dataset: seeds its held-out draw


def row_groups(parts: Sequence[Partition]) -> list[RowGroup]:
    out = []
    for p in parts:
        if p.format != "parquet":
            msg = f"--stream reads Parquet row groups; {p.url} is {p.format.upper()} (convert it to Parquet)"
            raise InputError(msg)
        with p.fs.open(p.path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
            out += [RowGroup(p, i, meta.row_group(i).num_rows, len(out) + i) for i in range(meta.num_row_groups)]
    return out


def read_group(rg: RowGroup, columns: Sequence[str]) -> pa.Table:
    hive = dict(rg.part.values)
    with rg.part.fs.open(rg.part.path, "rb") as f:
        t = pq.ParquetFile(f).read_row_group(rg.index, columns=[c for c in columns if c not in hive])
    for k, v in hive.items():
        if k in columns:
            t = t.append_column(k, pa.array([v] * t.num_rows))
    return t.select(list(columns))


class RowGroupStream:
    """The training rows of a dataset as a :class:`~anomalia.nn.training.BatchSource`: row groups in a
    random order per epoch, through a shuffle buffer, encoded and standardised as they are read."""

    def __init__(
        self,
        groups: Sequence[RowGroup],
        columns: Sequence[str],
        train_mask: Callable[[RowGroup, pa.Table], np.ndarray],
        encode: Callable[[pa.Table], np.ndarray],
        buffer_rows: int,
        device: torch.device,
    ) -> None:
        self.groups, self.columns, self.train_mask, self.encode = list(groups), list(columns), train_mask, encode
        self.buffer_rows, self.device = buffer_rows, device
        self.max_rows_held = 0  # the most feature rows held at once (the memory bound, measured)

    def _rows(self, rg: RowGroup) -> np.ndarray:
        t = read_group(rg, self.columns)
        return self.encode(t.filter(pa.array(self.train_mask(rg, t))))

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.groups), generator=generator).tolist()
        held: list[np.ndarray] = []
        n_held = 0
        for j, gi in enumerate(order):
            X = self._rows(self.groups[gi])
            held.append(X)
            n_held += X.shape[0]
            self.max_rows_held = max(self.max_rows_held, n_held)
            if n_held < self.buffer_rows and j < len(order) - 1:
                continue
            buf = np.concatenate(held) if len(held) > 1 else held[0]
            perm = torch.randperm(buf.shape[0], generator=generator).numpy()
            last = j == len(order) - 1
            stop = buf.shape[0] if last else buf.shape[0] - buf.shape[0] % batch_size
            for i in range(0, stop, batch_size):
                yield to_tensor(buf[perm[i : min(i + batch_size, stop)]], self.device)
            rest = buf[perm[stop:]]
            held, n_held = ([rest], rest.shape[0]) if rest.shape[0] else ([], 0)


def fit_stream(
    data: str | Path,
    *,
    out: str | Path,
    model: str | None = None,
    params: Iterable[str] | Mapping[str, Any] | None = None,
    label_column: str | None = None,
    threshold: str | None = None,
    contaminated: bool = False,
    impute: str | None = None,
    max_categories: int = 50,
    drop: Sequence[str] = (),
    time_column: str | None = None,
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
    buffer_rows: int = BUFFER_ROWS,
    sample_rows: int = SAMPLE_ROWS,
    storage_options: dict[str, Any] | None = None,
    stats: dict[str, Any] | None = None,
) -> FitResult:
    """Fit a deep table detector on a Parquet dataset too large for memory, and save the model folder.

    The arguments are :func:`anomalia.workflows.fit_file`'s; ``buffer_rows`` bounds the shuffle buffer and
    ``sample_rows`` the rows the encoder and the standardisation are fitted on. Labelled anomalies
    (``label_column``) are kept out of training; thresholds that need labels are not available here.
    ``stats``, when given, receives what the run held in memory (``max_rows_held``, ``n_held_out``).
    """
    start = time.perf_counter()
    if time_column is not None:
        raise InputError("--stream trains table detectors; a series is read whole (leave out --stream)")
    name = model or "autoencoder"
    det = make_fit_detector(name, params, threshold=threshold, seed=seed, contaminated=False)
    if not isinstance(det, DeepDetector) or det.input_kind != "table":
        raise InputError(f"--stream trains deep table detectors (autoencoder, vae); {name!r} is not one")
    if contaminated:
        raise InputError("--contaminated trains in two rounds over the data; it is not available with --stream")
    if det.threshold_rule().needs_labels:
        raise InputError("thresholds fitted on labelled anomalies are not available with --stream; use false-alarm:A")
    if buffer_rows < det.batch_size:
        raise InputError(f"the shuffle buffer ({buffer_rows} rows) must hold at least a batch ({det.batch_size})")
    det._check_params()
    parts = discover(str(data), storage_options)
    groups = row_groups(parts)
    n_total = sum(g.n_rows for g in groups)
    if n_total < 20:
        raise InputError(f"{data} has {n_total} rows; --stream is for large datasets (fit it without --stream)")
    if label_column is not None:
        check_columns(parts, [label_column])
    if drop:
        check_columns(parts, list(drop))
    all_columns = [*parts[0].columns(), *(k for k, _ in parts[0].values)]
    excluded = {*drop, *([label_column] if label_column else [])}
    columns = [c for c in all_columns if c not in excluded]
    read_cols = [*columns, *([label_column] if label_column else [])]
    rng = np.random.default_rng(seed)
    held_share = min(max(det.calibration_fraction, 0.05), HELD_OUT_ROWS / n_total)
    root_seed = int(rng.integers(2**31 - 1))

    def split(rg: RowGroup, t: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(training mask, held-out mask) of a row group: fixed per row group, whatever the epoch."""
        held = np.random.default_rng([root_seed, rg.number]).random(t.num_rows) < held_share
        normal = np.ones(t.num_rows, bool)
        if label_column is not None:
            normal = as_labels(t.column(label_column), label_column) == 0
        return normal & ~held, normal & held

    # one pass: a uniform sample of training rows, and every held-out row
    take = min(1.0, sample_rows / max(1.0, n_total * (1 - held_share)))
    sample, held_out, n_train, n_anomalies = [], [], 0, 0
    for rg in groups:
        t = read_group(rg, read_cols)
        tr, ho = split(rg, t)
        n_train += int(tr.sum())
        n_anomalies += int((~tr & ~ho).sum()) if label_column else 0
        pick = tr & (np.random.default_rng([root_seed, rg.number, 1]).random(t.num_rows) < take)
        sample.append(t.filter(pa.array(pick)).select(columns))
        held_out.append(t.filter(pa.array(ho)).select(columns))
    sample_t = pa.concat_tables(sample)
    held_t = pa.concat_tables(held_out)
    if sample_t.num_rows < 8 or held_t.num_rows < 2:
        raise InputError(f"{data}: too few normal rows to train and calibrate on")
    encoder = TabularEncoder(max_categories=max_categories, impute=impute)
    X_sample = encoder.fit(sample_t).transform(sample_t)
    X_held = encoder.transform(held_t)
    perm = rng.permutation(X_held.shape[0])
    n_cal = min(MAX_CALIBRATION_ROWS, max(1, math.ceil(X_held.shape[0] * 2 / 3)))
    X_cal, X_val = X_held[perm[:n_cal]], X_held[perm[n_cal:]]

    names = encoder.feature_names
    _, schema = det._validate(pd.DataFrame(X_sample[:8], columns=names), fitting=True)
    det._start_fit(schema, rng)
    det.device_ = resolve_device(det.device)
    det.scaler_ = Standardizer.fit(X_sample)
    scaler = det.scaler_

    def encode(t: pa.Table) -> np.ndarray:
        if t.num_rows == 0:
            return np.empty((0, len(names)), np.float32)
        return scaler.transform(encoder.transform(t.select(columns)))

    source = RowGroupStream(groups, read_cols, lambda rg, t: split(rg, t)[0], encode, buffer_rows, det.device_)
    Xv = to_tensor(scaler.transform(X_val), det.device_) if X_val.shape[0] else None
    with seeded(int(rng.integers(2**31 - 1)), det.device_) as gen:
        resolve = getattr(det, "_resolve_widths", None)  # widths that follow the data's shape (hidden=None)
        if resolve is not None:
            resolve(X_sample.shape[1])
        det.net_ = det._build(X_sample.shape[1])
        init_weights(det.net_, gen)
        det.net_.to(det.device_)
        history = train(
            det.net_,
            lambda net, xb: det._row_loss(net, xb, gen),
            source,
            Xv,
            det._config(),
            generator=gen,
            callback=callback,
        )
    det.history_ = [history.to_dict()]
    det.n_train_rows_ = n_train
    det.replay_ = X_sample[np.sort(rng.choice(X_sample.shape[0], min(REPLAY_ROWS, X_sample.shape[0]), replace=False))]
    det._after_training(X_sample)
    det.calibration_rows_ = X_cal[:REPLAY_ROWS]
    det._calibrate(det._score(X_cal))
    det._learn_normal(X_cal)
    fitted = Model(det, encoder, name=Path(out).name)
    fitted.save(out)
    if stats is not None:
        stats.update(max_rows_held=source.max_rows_held, n_held_out=int(X_held.shape[0]), n_sample=len(X_sample))
    return FitResult.of(
        fitted,
        data=data,
        n_rows=n_total,
        seconds=time.perf_counter() - start,
        n_excluded_anomalies=n_anomalies,
        n_input_columns=len(encoder.input_columns),
        n_features=len(names),
    )


__all__ = ["BUFFER_ROWS", "RowGroupStream", "fit_stream"]
