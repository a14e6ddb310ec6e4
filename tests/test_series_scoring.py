"""Score smoothing, Hundman's dynamic threshold and SPOT/DSPOT."""

from __future__ import annotations

import numpy as np
import pytest

import anomalia as an
from anomalia.scoring import SPOT, dynamic_threshold, ewma, running_tail_probability, running_zscore


def test_ewma_matches_the_recursion_and_carries_state() -> None:
    x = np.array([1.0, 3.0, 2.0, 5.0])
    a = 2 / (3 + 1)
    y = [1.0]
    for v in x[1:]:
        y.append(a * v + (1 - a) * y[-1])
    np.testing.assert_allclose(ewma(x, 3), y)
    np.testing.assert_allclose(np.r_[ewma(x[:2], 3), ewma(x[2:], 3, initial=y[1])], y)
    np.testing.assert_array_equal(ewma(x, 1), x)


def test_running_tail_probability_is_causal_and_flags_a_jump() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=1000)
    s[800:805] += 10
    p = running_tail_probability(s, short=5, long=500)
    assert p.shape == (1000,) and ((p >= 0) & (p <= 1)).all()
    assert (p[:100] == 0.5).all()  # not enough history yet
    assert p[804] > 0.999 and np.median(p[200:800]) < 0.9
    later = s.copy()
    later[900:] = 100
    np.testing.assert_array_equal(running_tail_probability(later, short=5, long=500)[:900], p[:900])


def test_running_zscore_by_hand_and_does_not_saturate() -> None:
    s = np.r_[np.tile([0.0, 2.0], 50), 1000.0]
    z = running_zscore(s, short=1, long=10**6, min_history=100)
    assert z[100] == pytest.approx((1000.0 - 1.0) / 1.0)  # history: mean 1, std 1
    assert (z[:100] == 0).all()
    assert running_tail_probability(s, short=1, long=10**6)[100] == 1.0  # the probability saturates


def _errors(seed: int = 0) -> np.ndarray:
    e = np.abs(np.random.default_rng(seed).normal(size=3000))
    e[1500:1510] += 8
    return e


def test_dynamic_threshold_finds_the_burst_and_prunes_noise() -> None:
    res = dynamic_threshold(_errors())
    assert np.flatnonzero(res.flags).tolist() == list(range(1500, 1510))
    assert np.isfinite(res.thresholds).all()
    # without a stand-out sequence, pruning leaves nothing flagged
    assert not dynamic_threshold(np.abs(np.random.default_rng(1).normal(size=2000))).flags.any()


def test_windowed_dynamic_threshold_uses_no_later_errors() -> None:
    e = _errors()
    res = dynamic_threshold(e, window=1000, step=100)
    assert res.flags[1500:1510].all()
    changed = e.copy()
    changed[2000:] += 50
    np.testing.assert_array_equal(dynamic_threshold(changed, window=1000, step=100).flags[:2000], res.flags[:2000])


def test_spot_flags_extremes_and_learns_peaks() -> None:
    e = _errors()
    spot = SPOT(risk=1e-3).fit(e[:1000])
    z0 = spot.threshold_
    res = spot.run(e[1000:])
    assert res.flags[500:510].all() and res.flags.sum() <= 15
    assert spot.threshold_ != z0 and spot.n_ > 1000
    assert res.thresholds.shape == (2000,)


def test_dspot_follows_a_drifting_level() -> None:
    e = _errors() + np.linspace(0, 20, 3000)
    plain = SPOT(risk=1e-3).fit(e[:1000]).run(e[1000:])
    drift = SPOT(risk=1e-3, depth=20).fit(e[:1000]).run(e[1000:])
    assert plain.flags.sum() > 500  # the drift alone raises alarms
    assert drift.flags[500:502].any() and drift.flags.sum() < 50


def test_spot_errors() -> None:
    with pytest.raises(an.ParameterError, match="risk"):
        SPOT(risk=2.0)
    with pytest.raises(an.ThresholdError, match="initial scores above"):
        SPOT(level=0.99).fit(np.arange(100.0))
    with pytest.raises(an.ThresholdError, match="not initialised"):
        SPOT().run(np.ones(3))


def test_find_runs_is_the_one_run_finder() -> None:
    from anomalia._core import find_runs
    from anomalia.metrics import ranges

    runs = find_runs([0, 1, 1, 0, 0, 1, 0, 1])
    assert runs.tolist() == [[1, 3], [5, 6], [7, 8]] and runs.dtype == np.int64 and runs.shape == (3, 2)
    assert find_runs(np.ones(4, bool)).tolist() == [[0, 4]]
    assert find_runs(np.zeros(4)).shape == (0, 2) and find_runs([]).shape == (0, 2)
    assert find_runs([0, 2, 2, 0]).tolist() == [[1, 3]]  # truth value, not the int8 cast
    assert ranges is find_runs
    with pytest.raises(an.InputError, match="1-D"):
        find_runs(np.ones((2, 2)))


def test_spot_is_a_threshold_and_its_stream_state_carries_over() -> None:
    e = _errors()
    spot = SPOT(risk=1e-3, level=0.9, refit_every=20).fit(e[:1000])
    assert isinstance(spot, an.Threshold) and spot.streaming and spot.spec == "spot:0.001"
    once = SPOT(risk=1e-3, level=0.9, refit_every=20).fit(e[:1000]).run(e[1000:])
    parts = [spot.run(e[1000:2000]), spot.run(e[2000:])]
    np.testing.assert_array_equal(np.concatenate([p.flags for p in parts]), once.flags)
    np.testing.assert_array_equal(np.concatenate([p.thresholds for p in parts]), once.thresholds)
    assert spot.peaks_.size == len(spot.state_.peaks) and spot.n_ == spot.state_.n
