"""Quality floors on real series (../shared/data/timeseries; skipped with a reason when absent)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia.metrics import nab as nabm
from anomalia.metrics.timeseries import event_prf, point_prf

from conftest import real_data

pytestmark = pytest.mark.realdata


def nab_corpus() -> tuple[list[int], list[list[tuple[int, int]]]]:
    root = real_data("timeseries", "nab")
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    lengths, wins = [], []
    for key in sorted(windows):
        ts = pd.DatetimeIndex(pd.to_datetime(pd.read_csv(root / "data" / key, usecols=["timestamp"])["timestamp"]))
        w = []
        for start, end in windows[key]:
            a, b = ts.get_loc(pd.Timestamp(start)), ts.get_loc(pd.Timestamp(end))  # every window edge is a row
            w.append((int(a), int(b)))
        lengths.append(len(ts))
        wins.append(w)
    return lengths, wins


def test_nab_perfect_and_null_detectors_score_100_and_0_on_the_whole_corpus() -> None:
    lengths, wins = nab_corpus()
    assert len(lengths) == 58 and sum(len(w) for w in wins) == 116
    profiles = nabm.load_profiles(real_data("timeseries", "nab", "config", "profiles.json"))
    assert profiles == nabm.PROFILES
    perfect = []
    for n, w in zip(lengths, wins, strict=True):
        s = np.zeros(n)
        s[[a for a, _ in w]] = 1.0
        perfect.append(s)
    for prof in profiles.values():
        assert nabm.nab_sweep(perfect, wins, prof).best[1] == pytest.approx(100.0)
        assert nabm.nab_score([np.zeros(n, bool) for n in lengths], wins, prof) == pytest.approx(0.0)


def test_smd_machine_forecaster_floor() -> None:
    z = np.load(real_data("timeseries", "smd", "machine-1-6.npz"))
    det = an.CNNForecaster(window=16, filters=8, hidden=16, epochs=2, train_stride=8, batch_size=256, random_state=0)
    det.fit(z["train"].astype(np.float32))
    y = z["test_label"].astype(int)
    scores = det.anomaly_score(z["test"].astype(np.float32))
    assert an.metrics.roc_auc(y, scores) > 0.85
    flags = det.is_anomaly(z["test"].astype(np.float32))
    assert point_prf(y, flags)[1] > 0.5 and event_prf(y, flags)["recall"] > 0.5


def test_ucr_top_scored_point_finds_the_anomaly() -> None:
    path = real_data("timeseries", "ucr", "136_UCR_Anomaly_InternalBleeding17_1600_3198_3309.txt")
    x = np.loadtxt(path, dtype=np.float32).reshape(-1, 1)
    det = an.CNNForecaster(window=64, filters=16, hidden=32, epochs=30, random_state=0).fit(x[:1600])
    s = det.anomaly_score(x)
    top = int(np.argmax(s[1600:])) + 1600
    assert 3198 - 100 <= top <= 3309 + 100
