"""Telemanom's decision procedure (anomalia.scoring.telemanom) and the `telemanom` detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia.scoring import telemanom as tm


def _noise(n: int = 6000, seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(0.0, 0.05, n))


def test_adjusted_ewma_is_pandas_adjusted_mean() -> None:
    x = np.random.default_rng(1).normal(size=500)
    expected = pd.Series(x).ewm(span=105).mean().to_numpy()
    np.testing.assert_allclose(tm.adjusted_ewma(x, 105), expected, rtol=1e-10, atol=1e-12)


def test_a_burst_of_errors_is_one_buffered_sequence_and_noise_is_pruned() -> None:
    e = _noise()
    e[4000:4040] += 1.0
    e[1500:1503] += 0.1  # a small bump among the noise: pruned (it does not stand out from normal errors)
    values = np.sin(np.arange(e.size) / 20.0)
    res = tm.telemanom_threshold(e, values)
    assert res.sequences.tolist() and len(res.sequences) == 1
    a, b = res.sequences[0]
    assert a <= 4000 and b >= 4040 + 50  # widened by the buffer (after the burst: up to 100 steps)
    assert not res.flags[:3900].any() and res.flags[4000:4040].all()
    assert res.scores.shape == (1,) and res.scores[0] > 0
    assert res.smoothed.shape == e.shape and np.isfinite(res.thresholds[res.flags]).all()


def test_errors_small_against_the_values_flag_nothing() -> None:
    e = _noise() * 0.01
    e[4000:4040] += 0.01  # stands out from the errors, but tiny against values of range 2 and below min_error
    values = np.sin(np.arange(e.size) / 20.0)
    assert not tm.telemanom_threshold(e, values).flags.any()
    assert tm.telemanom_threshold(e, None, min_error=None).flags[4000:4040].all()


def test_decisions_before_a_batch_do_not_depend_on_later_errors() -> None:
    e = _noise(8000)
    e[3000:3040] += 1.0
    later = e.copy()
    later[6000:6100] += 3.0
    a, b = tm.telemanom_threshold(e), tm.telemanom_threshold(later)
    # the window judging a batch ends with it: steps up to the batch before 6000 are decided identically
    np.testing.assert_array_equal(a.flags[:5880], b.flags[:5880])
    assert b.flags[6000:6100].all()


def test_pruning_keeps_sequences_down_to_the_last_large_drop() -> None:
    e = np.zeros(30)
    e[2:4], e[10:12], e[20:22] = 10.0, 9.5, 1.0
    seqs = np.array([[2, 4], [10, 12], [20, 22]])
    assert tm._prune(e, seqs, 0.95, 0.13).tolist() == [[2, 4], [10, 12]]  # 9.5 -> 1 large, 1 -> 0.95 small
    assert len(tm._prune(e, seqs, 0.5, 0.13)) == 3  # 1 -> 0.5 (normal) is large: all kept
    e[10:12] = 5.0
    assert tm._prune(e, seqs[:2], 4.8, 0.13).tolist() == [[2, 4]]  # 5 -> 4.8 (normal) is under 13 %


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"errors": [1.0]}, "at least 2"), ({"errors": [1.0, np.nan]}, "finite"),
     ({"errors": [1.0, 2.0], "values": [1.0]}, "one value per error"),
     ({"errors": [1.0, 2.0], "batch_size": 0}, "batch_size"), ({"errors": [1.0, 2.0], "p": 1.5}, "p must")],
)  # fmt: skip
def test_bad_input_is_named(kwargs: dict, match: str) -> None:
    with pytest.raises(an.InputError, match=match):
        tm.telemanom_threshold(**kwargs)


def _telemetry(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    value = np.sin(2 * np.pi * t / 40) + 0.05 * rng.normal(size=n)
    command = (t % 40 < 20).astype(float)  # an input channel
    return np.stack([value, command], axis=1).astype(np.float32)


def test_telemanom_detector_finds_the_anomalous_sequence() -> None:
    train, test = _telemetry(1500, 0), _telemetry(1200, 1)
    test[800:830, 0] += 2.5
    det = an.Telemanom(
        window=30, hidden=16, layers=1, error_batch=20, error_window=10, error_buffer=10, epochs=6,
        dropout=0.0, random_state=0,
    ).fit(train)  # fmt: skip
    res = det.detect(test)
    assert res.flags.shape == (1200,) and not res.flags[:30].any()
    found = [(a, b) for a, b in res.sequences if a < 830 and b > 800]
    assert found, res.sequences
    assert len(res.sequences) <= 2  # the normal stretches are not flagged
    assert det.forecast(test).shape == (1200,)
    assert det.anomaly_score(test)[800:830].mean() > 5 * det.anomaly_score(test)[100:700].mean()


def test_telemanom_target_must_be_a_channel() -> None:
    with pytest.raises(an.ParameterError, match="target"):
        an.Telemanom(target=3, window=8, hidden=4, layers=1, epochs=1).fit(_telemetry(300, 0))


def _shifted(n: int = 1200) -> np.ndarray:
    t = np.arange(n)
    x = np.sin(2 * np.pi * t / 25) + 0.05 * np.random.default_rng(2).normal(size=n)
    x[600:] += 3.0  # a new normal level
    return x.reshape(-1, 1).astype(np.float32)


def test_continual_learning_adapts_and_skips_flagged_blocks() -> None:
    from anomalia.detectors.continual import continual_scores

    x = _shifted()

    def make() -> an.WindowAutoEncoder:
        return an.WindowAutoEncoder(window=8, hidden=(8, 4), epochs=5, random_state=0).fit(x[:300])

    fixed = make().anomaly_score(x)
    learning = continual_scores(make(), x, start=300, block=100)
    np.testing.assert_allclose(learning[:400], fixed[:400])  # the first block is scored by the fitted model
    assert learning[1000:].mean() < 0.5 * fixed[1000:].mean()  # it learned the new level
    never = continual_scores(make(), x, start=300, block=100, flagged=lambda s, n: np.ones(n, bool))
    np.testing.assert_allclose(never, fixed)  # every block flagged: nothing learned
    with pytest.raises(an.InputError, match="start"):
        continual_scores(make(), x, start=0)


def test_readme_telemanom_example_runs(capsys: pytest.CaptureFixture) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "an.Telemanom(" in b]
    namespace: dict = {}
    exec(compile(code, "README.md (Telemanom)", "exec"), namespace)
    seqs = namespace["found"].sequences
    assert any(a < 640 and b > 600 for a, b in seqs), seqs


def test_buffer_flags_widens_each_flag() -> None:
    f = np.zeros(20, bool)
    f[[5, 15]] = True
    assert np.flatnonzero(tm.buffer_flags(f, 2)).tolist() == [3, 4, 5, 6, 7, 13, 14, 15, 16, 17]
    with pytest.raises(an.InputError, match="buffer"):
        tm.buffer_flags(f, -1)
