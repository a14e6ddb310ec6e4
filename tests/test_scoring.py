"""Calibration and thresholds: exact formulas, guarantees on synthetic data, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import anomalia as an
from anomalia.scoring import conformal_p_values, fit_tail, parse_threshold, sweep


def test_conformal_p_value_formula() -> None:
    cal = np.array([1.0, 2.0, 3.0, 4.0])
    p = conformal_p_values(cal, np.array([0.0, 2.0, 2.5, 4.0, 9.0]))
    np.testing.assert_allclose(p, [5 / 5, 4 / 5, 3 / 5, 2 / 5, 1 / 5])


@pytest.mark.parametrize("decimals", [0, 1, 6])
def test_conformal_p_values_for_many_scores_equal_the_formula(rng: np.random.Generator, decimals: int) -> None:
    # many scores take the sorted path; ties (rounding), NaN and infinities must count as in the formula
    cal = np.round(rng.gamma(2.0, size=777), decimals)
    scores = np.round(rng.gamma(2.0, size=20_000), decimals)
    scores[rng.random(scores.size) < 0.01] = np.nan
    scores[rng.random(scores.size) < 0.01] = np.inf
    scores[rng.random(scores.size) < 0.01] = -np.inf
    expected = np.array([(1 + np.sum(cal >= s)) / (cal.size + 1) for s in scores])
    np.testing.assert_array_equal(conformal_p_values(cal, scores), expected)
    np.testing.assert_array_equal(conformal_p_values(cal, scores[:100]), expected[:100])  # the search path


def test_false_alarm_rate_matches_p_values_exactly(rng: np.random.Generator) -> None:
    cal = rng.normal(size=999)
    scores = rng.normal(size=5000)
    for alpha in (0.01, 0.05, 0.2):
        t = an.FalseAlarmRate(alpha).fit(cal)
        np.testing.assert_array_equal(t.predict(scores), conformal_p_values(cal, scores) <= alpha)
        np.testing.assert_array_equal(t.predict(cal), conformal_p_values(cal, cal) <= alpha)


def test_false_alarm_rate_holds_on_new_normal_data(rng: np.random.Generator) -> None:
    rates = []
    for _ in range(50):
        t = an.FalseAlarmRate(0.05).fit(rng.exponential(size=500))
        rates.append(t.predict(rng.exponential(size=2000)).mean())
    assert 0.04 < np.mean(rates) <= 0.055


def test_too_few_calibration_scores_use_the_largest(caplog: pytest.LogCaptureFixture) -> None:
    t = an.FalseAlarmRate(0.01).fit(np.arange(10.0))
    assert t.threshold_ == 9.0 and "needs at least 99" in caplog.text


def test_quantile_contamination_fixed() -> None:
    s = np.arange(101.0)
    assert an.Quantile(0.9).fit(s).threshold_ == 90.0
    assert an.Contamination(0.1).fit(s).threshold_ == 90.0
    assert an.Fixed(3.5).fit(s).predict([3.5, 3.6]).tolist() == [False, True]


def test_pot_extrapolates_an_exponential_tail(rng: np.random.Generator) -> None:
    scores = rng.exponential(size=20_000)
    t = an.POT(1e-4).fit(scores)
    exact = -np.log(1e-4)  # P(X > t) = exp(-t)
    assert abs(t.threshold_ - exact) / exact < 0.1
    assert abs(t.info_["gamma"]) < 0.1
    tail = fit_tail(scores)
    assert abs(tail.quantile(1e-3) + np.log(1e-3)) < 0.5


def test_pot_needs_enough_peaks() -> None:
    with pytest.raises(an.ThresholdError, match="POT needs at least 10"):
        an.POT(1e-3).fit(np.arange(100.0))


def _brute(scores: np.ndarray, y: np.ndarray) -> list[tuple[float, float, float]]:
    out = []
    for t in np.unique(scores):
        f = scores >= t
        tp = (f & (y == 1)).sum()
        p, r = tp / f.sum(), tp / y.sum()
        out.append((t, p, r))
    return out


def test_labelled_thresholds_pick_the_right_operating_point(rng: np.random.Generator) -> None:
    y = (rng.random(400) < 0.2).astype(int)
    s = rng.normal(size=400) + 1.5 * y
    table = _brute(s, y)
    f1 = [2 * p * r / (p + r) if p + r else 0 for _, p, r in table]
    best = an.BestF1().fit(s, y)
    assert best.info_["f1"] == pytest.approx(max(f1))
    prec = an.TargetPrecision(0.8).fit(s, y)
    ok = [(r, p) for _, p, r in table if p >= 0.8]
    assert prec.info_["recall"] == pytest.approx(max(ok)[0]) and prec.info_["precision"] >= 0.8
    rec = an.TargetRecall(0.9).fit(s, y)
    flags = rec.predict(s)
    assert flags[y == 1].mean() >= 0.9
    ok = [p for _, p, r in table if r >= 0.9]
    assert rec.info_["precision"] == pytest.approx(max(ok))


def test_sweep_is_consistent_with_predict(rng: np.random.Generator) -> None:
    y = (rng.random(200) < 0.3).astype(int)
    s = np.round(rng.normal(size=200), 1)  # ties
    sw = sweep(s, y)
    for thr, p in zip(sw.thresholds, sw.precision, strict=True):
        flags = s > thr
        assert p == pytest.approx(y[flags].mean())


def test_labelled_threshold_without_anomalies_raises() -> None:
    for spec in ("best-f1", "precision:0.9", "recall:0.9"):
        with pytest.raises(an.ThresholdError, match="needs labelled anomalies"):
            parse_threshold(spec).fit(np.arange(10.0), np.zeros(10))
    with pytest.raises(an.InputError, match="labels"):
        an.BestF1().fit(np.arange(10.0))


def test_unreachable_precision_raises() -> None:
    s = np.arange(10.0)
    y = np.array([1, 0] * 5)
    with pytest.raises(an.ThresholdError, match=r"no threshold reaches precision 0\.99"):
        an.TargetPrecision(0.99).fit(s, y)


@pytest.mark.parametrize(
    "spec",
    [
        "false-alarm:0.05",
        "quantile:0.9",
        "pot:0.001",
        "best-f1",
        "precision:0.5",
        "recall:0.5",
        "fixed:2",
        "contamination:0.1",
    ],
)
def test_specs_round_trip(spec: str, rng: np.random.Generator) -> None:
    t = parse_threshold(spec)
    assert parse_threshold(t.spec) == t
    y = np.r_[np.zeros(900), np.ones(100)]
    s = rng.normal(size=1000) + 2 * y
    fitted = t.fit(s, y if t.needs_labels else None)
    back = an.Threshold.from_dict(fitted.to_dict())
    assert back.threshold_ == fitted.threshold_ and back.spec == fitted.spec


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nope:1", "unknown threshold"),
        ("quantile", "needs a value"),
        ("quantile:x", "must be a number"),
        ("false-alarm:2", "in (0, 1)"),
        ("best-f1:3", "takes no value"),
    ],
)
def test_bad_specs(spec: str, words: str) -> None:
    with pytest.raises(an.ParameterError) as info:
        parse_threshold(spec)
    assert words in str(info.value)


def test_threshold_scores_must_be_finite() -> None:
    with pytest.raises(an.InputError, match="NaN"):
        an.Quantile(0.5).fit([1.0, np.nan])
    with pytest.raises(an.NotFittedError):
        an.Quantile(0.5).predict([1.0])


@pytest.mark.parametrize("spec", ["spot:0.001", "dspot:0.001", "spot"])
def test_streaming_specs_round_trip(spec: str, rng: np.random.Generator) -> None:
    t = parse_threshold(spec)
    assert t.streaming and parse_threshold(t.spec) == t
    fitted = t.fit(rng.normal(size=1000))
    back = an.Threshold.from_dict(fitted.to_dict())
    assert back.threshold_ == fitted.threshold_ and back.spec == fitted.spec and back == fitted


def test_calibrator_p_values_are_conformal(rng: np.random.Generator) -> None:
    cal = rng.normal(size=99)
    c = an.scoring.Calibrator(cal)
    new = rng.normal(size=20)
    np.testing.assert_array_equal(c.p_values(new), conformal_p_values(cal, new))
    assert c.p_values([np.inf])[0] == 1 / 100 and c.p_values([-np.inf])[0] == 1.0
