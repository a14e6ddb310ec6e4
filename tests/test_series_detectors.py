"""Series detectors: per-step scores, warm-up, contiguous calibration, streaming, explanations, timestamps.

The shared contract (clone, seeding, save/load, bad input) runs over them in test_common.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia.detectors import get_detector

SERIES = ["lstm-forecaster", "cnn-forecaster", "lstm-autoencoder", "window-autoencoder", "window-vae"]


def make(name: str, **extra: object) -> an.BaseDetector:
    cls = get_detector(name)
    return cls(**{**cls.test_params, "random_state": 0, **extra})


def sine(n: int, seed: int = 0, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    cols = [np.sin(2 * np.pi * t / 20 + k) for k in range(channels)]
    return (np.stack(cols, axis=1) + 0.05 * rng.normal(size=(n, channels))).astype(np.float32)


@pytest.fixture(scope="module")
def cnn() -> an.BaseDetector:
    return make("cnn-forecaster", epochs=30, filters=8, hidden=16, lr=3e-3).fit(sine(600))


@pytest.mark.parametrize("name", SERIES)
def test_one_score_per_step_with_documented_warm_up(name: str) -> None:
    det = make(name).fit(sine(200))
    X = sine(50, seed=1)
    s = det.anomaly_score(X)
    assert s.shape == (50,) and s.dtype == np.float64
    warm = det.span - 1
    np.testing.assert_array_equal(s[:warm], 0.0)
    assert (s[warm:] > 0).all()
    assert not det.is_anomaly(X)[:warm].any()
    np.testing.assert_array_equal(det.p_value(X)[:warm], 1.0)


def test_calibration_is_the_contiguous_end_of_the_series() -> None:
    det = make("cnn-forecaster", calibration_fraction=0.25)
    train, cal = det._split(400, np.random.default_rng(0))
    np.testing.assert_array_equal(train, np.arange(300))
    np.testing.assert_array_equal(cal, np.arange(300 - det.span + 1, 400))  # window of context first
    det.fit(sine(400))
    assert det.calibration_scores_.size == 100
    assert det.replay_.shape == (300, 2)


def test_a_spike_gets_the_top_score_and_its_channel_the_top_share(cnn: an.BaseDetector) -> None:
    X = sine(300, seed=2)
    X[200, 1] += 3.0
    s = cnn.anomaly_score(X)
    assert int(np.argmax(s)) == 200
    assert cnn.is_anomaly(X)[200]
    shares = cnn.explain(X)
    assert shares.shape == (300, 2) and int(np.argmax(shares[200])) == 1
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_streaming_update_uses_only_the_past_and_matches_batch_scoring(cnn: an.BaseDetector, tmp_path) -> None:
    fit_data = sine(600)
    new = sine(120, seed=3)
    whole = cnn.anomaly_score(np.concatenate([fit_data, new]))[600:]
    cnn.save(tmp_path / "m")
    streamed = np.concatenate([cnn.update(new[:1]), cnn.update(new[1:50]), cnn.update(new[50:])])
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-7)  # float32, other batches
    # a saved model continues the stream where it was saved
    back = an.load(tmp_path / "m")
    np.testing.assert_allclose(back.update(new), whole, rtol=1e-5, atol=1e-7)
    # causal: changing a later step does not change earlier scores
    changed = new.copy()
    changed[100:] += 5.0
    np.testing.assert_array_equal(back.anomaly_score(changed)[:100], back.anomaly_score(new)[:100])


def test_smoothing_carries_over_between_updates() -> None:
    det = make("cnn-forecaster", smoothing=5).fit(sine(200))
    new = sine(60, seed=4)
    one = det.__class__(**det.get_params()).fit(sine(200)).update(new)
    parts = np.concatenate([det.update(new[:25]), det.update(new[25:])])
    np.testing.assert_allclose(parts, one, rtol=1e-9)


def test_timestamped_frames_keep_rows_aligned_after_resampling() -> None:
    idx = pd.date_range("2024-01-01", periods=300, freq="1min")
    df = pd.DataFrame(sine(300), index=idx, columns=["cpu", "mem"])
    det = make("cnn-forecaster", resample="1min", fill="interpolate").fit(df)
    assert det.step_ == pd.Timedelta("1min")
    gappy = df.drop(df.index[[100, 101, 150]])
    s = det.anomaly_score(gappy)
    assert s.shape == (297,)
    assert det.explain(gappy).shape == (297, 2)
    with pytest.raises(an.InputError, match="not after the last step"):
        det.update(df.iloc[-5:])
    with pytest.raises(an.SchemaError, match="columns differ"):
        det.anomaly_score(df.rename(columns={"cpu": "x"}))


def test_irregular_timestamps_without_resample_are_refused_at_fit() -> None:
    idx = pd.date_range("2024-01-01", periods=300, freq="1min").delete(50)
    df = pd.DataFrame(sine(299), index=idx)
    with pytest.raises(an.InputError, match=r"resample='(1?min|T)'"):
        make("cnn-forecaster").fit(df)


def test_too_short_a_series_names_the_window() -> None:
    with pytest.raises(an.InputError, match="window=8"):
        make("lstm-forecaster").fit(sine(12))


def test_partial_fit_trains_on_new_windows_and_keeps_series_state() -> None:
    det = make("cnn-forecaster").fit(sine(200))
    n_cal = det.calibration_scores_.size
    det.partial_fit(sine(100, seed=5))
    assert det.n_updates_ == 1 and len(det.history_) == 2
    assert det.calibration_scores_.size == n_cal + 20
    np.testing.assert_array_equal(det.context_, sine(100, seed=5)[-det.span + 1 :])


def test_series_parameters_are_checked_at_fit() -> None:
    with pytest.raises(an.ParameterError, match="fill"):
        make("cnn-forecaster", fill="zeros").fit(sine(100))
    with pytest.raises(an.ParameterError, match="window"):
        make("cnn-forecaster", window=1).fit(sine(100))
