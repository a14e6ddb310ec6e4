"""Time-series metrics and the NAB score, checked against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import anomalia as an
from anomalia.metrics import nab as nabm
from anomalia.metrics.timeseries import (
    PA_NOTE,
    event_prf,
    point_adjusted_prf,
    point_prf,
    range_prf,
    ranges,
    series_report,
)

# labelled ranges [5, 10) and [15, 17); flagged ranges [0, 1) and [7, 12)
Y = np.zeros(20, int)
Y[5:10] = 1
Y[15:17] = 1
F = np.zeros(20, bool)
F[0] = True
F[7:12] = True


def test_ranges() -> None:
    assert ranges(Y).tolist() == [[5, 10], [15, 17]]
    assert ranges(np.ones(3)).tolist() == [[0, 3]]
    assert ranges(np.zeros(3)).shape == (0, 2)


def test_point_event_and_point_adjusted_by_hand() -> None:
    # point-wise: 3 of 6 flags are anomalies; 3 of 7 anomalies flagged
    assert point_prf(Y, F) == pytest.approx((0.5, 3 / 7, 2 * 0.5 * (3 / 7) / (0.5 + 3 / 7)))
    ev = event_prf(Y, F)
    assert (ev["found"], ev["events"], ev["false_alarm_events"], ev["flagged_events"]) == (1, 2, 1, 2)
    assert ev["recall"] == 0.5 and ev["precision"] == 0.5 and ev["f1"] == 0.5
    # point-adjusted: range [5, 10) becomes wholly found -> tp 5, fp 3 (0, 10, 11), fn 2
    p, r, f1 = point_adjusted_prf(Y, F)
    assert (p, r) == pytest.approx((5 / 8, 5 / 7))
    assert f1 > point_prf(Y, F)[2]


def test_range_based_by_hand() -> None:
    # flat bias: recall = mean(3/5, 0) = 0.3; precision = mean(0, 3/5) = 0.3
    assert range_prf(Y, F) == pytest.approx((0.3, 0.3, 0.3))
    # alpha = 1: recall is pure existence = 1/2
    assert range_prf(Y, F, alpha=1.0)[1] == pytest.approx(0.5)
    # front bias over [5, 10): weights 5,4,3,2,1; flagged positions 7,8,9 have weights 3,2,1 -> 6/15
    assert range_prf(Y, F, bias="front")[1] == pytest.approx(0.5 * 6 / 15)
    # back bias: weights 1..5; flagged 3,4,5 -> 12/15
    assert range_prf(Y, F, bias="back")[1] == pytest.approx(0.5 * 12 / 15)


def test_range_cardinality_reciprocal_halves_a_split_detection() -> None:
    y = np.zeros(10, int)
    y[2:8] = 1
    f = np.zeros(10, bool)
    f[[2, 3, 6, 7]] = True  # two flagged ranges inside one labelled range
    assert range_prf(y, f)[1] == pytest.approx(4 / 6)
    assert range_prf(y, f, cardinality="reciprocal")[1] == pytest.approx(0.5 * 4 / 6)


def test_pa_f1_is_reported_only_with_the_honest_ones_and_its_note() -> None:
    rep = series_report(Y, F)
    assert {"point", "event", "range", "point_adjusted_f1", "note"} <= set(rep)
    assert rep["note"] == PA_NOTE and "optimistic" in PA_NOTE


def test_random_flags_reach_a_high_pa_f1_but_not_a_high_point_f1() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(10000, int)
    for start in range(500, 10000, 1000):
        y[start : start + 100] = 1
    flags = rng.random(10000) < 0.05
    assert point_adjusted_prf(y, flags)[2] > 0.6 > 0.2 > point_prf(y, flags)[2]


def test_metric_input_errors() -> None:
    with pytest.raises(an.InputError, match="at least one labelled"):
        range_prf(np.zeros(5, int), np.ones(5, bool))
    with pytest.raises(an.InputError, match="bias"):
        range_prf(Y, F, bias="late")
    with pytest.raises(an.InputError):
        event_prf(Y, F[:5])


# ------------------------------------------------------------------------------ NAB
SIG = lambda x: 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0  # noqa: E731
STD = nabm.PROFILES["standard"]


def test_scaled_sigmoid_and_probation_follow_the_paper() -> None:
    assert nabm.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nabm.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nabm.scaled_sigmoid(0.0) == 0.0
    assert nabm.scaled_sigmoid(3.0) == -1.0
    assert nabm.probationary_length(100) == 15
    assert nabm.probationary_length(10000) == 750


def test_profiles_match_nabs_config() -> None:
    assert nabm.PROFILES["reward_low_FP_rate"].fp == 0.22 and nabm.PROFILES["reward_low_FN_rate"].fn == 2.0


def test_nab_raw_score_by_hand() -> None:
    w = [(50, 59)]  # width 10, 100 steps, probation 15
    first = np.zeros(100, bool)
    first[50] = True
    assert nabm.nab_raw_score(first, w, STD) == (pytest.approx(1.0), 1)  # earliest detection = A_TP
    assert nabm.nab_score([first], [w]) == pytest.approx(100.0)
    assert nabm.nab_score([np.zeros(100, bool)], [w]) == pytest.approx(0.0)
    f = np.zeros(100, bool)
    f[[10, 30, 55, 57, 60]] = True
    # 10: probationary (ignored); 30: before any window, -A_FP; 55: position -(59-55+1)/10 = -0.5, only the
    # earliest detection in a window counts (57 ignored); 60: 1 step after the window, position 1/9
    expected = -0.11 + SIG(-0.5) / SIG(-1.0) + 0.11 * SIG(1 / 9)
    raw, n_windows = nabm.nab_raw_score(f, w, STD)
    assert n_windows == 1
    assert raw == pytest.approx(expected)
    assert nabm.nab_score([f], [w]) == pytest.approx(100 * (expected + 1) / 2)
    # low-FN profile: a missed window costs 2
    assert nabm.nab_raw_score(np.zeros(100, bool), w, nabm.PROFILES["reward_low_FN_rate"])[0] == -2.0


def test_sweep_equals_scoring_each_threshold_directly() -> None:
    rng = np.random.default_rng(1)
    scores = [rng.random(300), rng.random(200)]
    windows = [[(100, 119), (200, 229)], [(150, 160)]]
    sw = nabm.nab_sweep(scores, windows, STD)
    assert sw.n_windows == 3 and sw.normalised[0] == 0.0  # threshold above every score: the null detector
    for i in range(1, len(sw.thresholds), 37):
        t = sw.thresholds[i]
        direct = nabm.nab_score([s >= t for s in scores], windows, STD)
        assert sw.normalised[i] == pytest.approx(direct)
    t, best = sw.best
    assert best == pytest.approx(nabm.nab_score([s >= t for s in scores], windows, STD))
    assert best == pytest.approx(sw.normalised.max())


def test_perfect_scores_reach_100() -> None:
    s = np.zeros(400)
    w = [(100, 139), (300, 319)]
    s[[100, 300]] = 1.0
    assert nabm.nab_sweep([s], [w]).best == (1.0, pytest.approx(100.0))
