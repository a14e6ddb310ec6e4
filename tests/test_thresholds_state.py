"""Thresholds keep every parameter and their fitted state: to_dict/from_dict, clone, deepcopy, parse_threshold;
SPOT's stream state is a value that steps purely; the Calibrator."""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

import numpy as np
import pytest

import anomalia as an
from anomalia.scoring import (
    POT,
    SPOT,
    THRESHOLDS,
    BestF1,
    Calibrator,
    Contamination,
    FalseAlarmRate,
    Fixed,
    Quantile,
    SPOTState,
    TargetPrecision,
    TargetRecall,
    Threshold,
    conformal_p_values,
    parse_threshold,
)
from anomalia.scoring.calibration import SORTED_COUNT_MIN

# one instance per registered class, every parameter that has a default set to something else
NON_DEFAULT: dict[type[Threshold], Threshold] = {
    FalseAlarmRate: FalseAlarmRate(0.05),
    Quantile: Quantile(0.9),
    Contamination: Contamination(0.05),
    Fixed: Fixed(2.5),
    POT: POT(1e-3, level=0.9),
    BestF1: BestF1(),
    TargetPrecision: TargetPrecision(0.6),
    TargetRecall: TargetRecall(0.7),
    SPOT: SPOT(1e-3, level=0.9, depth=5, refit_every=3),
}
CASES = [NON_DEFAULT[cls] for cls in THRESHOLDS.values()]
IDS = [t.name for t in CASES]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(1800), np.ones(200)]
    return rng.normal(size=2000) + 2.5 * y, y


def _fitted(t: Threshold) -> Threshold:
    s, y = _data()
    return parse_threshold(t).fit(s, y if t.needs_labels else None)


def _json(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d))  # what a manifest file gives back


def _errors(n: int = 3000, seed: int = 0) -> np.ndarray:
    e = np.abs(np.random.default_rng(seed).normal(size=n)) + np.linspace(0, 0.5, n)
    e[2000:2010] += 8
    return e


def test_every_registered_threshold_has_a_non_default_case() -> None:
    assert set(NON_DEFAULT) == set(THRESHOLDS.values())
    for t in CASES:
        for name, p in inspect.signature(type(t).__init__).parameters.items():
            if name != "self" and p.default is not inspect.Parameter.empty:
                assert getattr(t, name) != p.default, (t, name)


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_get_params_are_the_constructor_arguments(t: Threshold) -> None:
    params = t.get_params()
    names = [n for n in inspect.signature(type(t).__init__).parameters if n != "self"]
    assert list(params) == names
    assert type(t)(**params) == t


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_to_dict_from_dict_unfitted(t: Threshold) -> None:
    d = _json(t.to_dict())
    assert d == {"name": t.name, "params": t.get_params(), "spec": t.spec}
    back = Threshold.from_dict(d)
    assert type(back) is type(t) and back == t and back.get_params() == t.get_params()
    assert not hasattr(back, "threshold_")


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_to_dict_from_dict_fitted(t: Threshold) -> None:
    fitted = _fitted(t)
    d = _json(fitted.to_dict())
    assert d["name"] == t.name and d["params"] == t.get_params() and d["spec"] == t.spec
    assert d["threshold"] == fitted.threshold_ and d["info"] == fitted.info_
    back = Threshold.from_dict(d)
    assert type(back) is type(t) and back.get_params() == t.get_params()
    assert back.threshold_ == fitted.threshold_ and back.info_ == fitted.info_
    s, _ = _data(1)
    np.testing.assert_array_equal(back.predict(s), fitted.predict(s))
    assert type(t).from_dict(d) == t  # the subclass's from_dict works too


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_clone_keeps_params_and_is_unfitted(t: Threshold) -> None:
    fitted = _fitted(t)
    c = fitted.clone()
    assert c is not fitted and c == t and c.get_params() == t.get_params()
    assert not hasattr(c, "threshold_") and not hasattr(c, "info_") and not hasattr(c, "state_")


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_deepcopy_keeps_params_and_state(t: Threshold) -> None:
    assert copy.deepcopy(t).get_params() == t.get_params()
    fitted = _fitted(t)
    c = copy.deepcopy(fitted)
    assert c is not fitted and c.get_params() == t.get_params()
    assert c.threshold_ == fitted.threshold_ and c.info_ == fitted.info_


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_parse_threshold_of_an_object_keeps_params(t: Threshold) -> None:
    fitted = _fitted(t)
    p = parse_threshold(fitted)
    assert p is not fitted and p == t and p.get_params() == t.get_params()
    assert not hasattr(p, "threshold_")
    assert hash(p) == hash(t)


@pytest.mark.parametrize("t", CASES, ids=IDS)
def test_scikit_learn_clone_keeps_params(t: Threshold) -> None:
    from sklearn.base import clone

    c = clone(_fitted(t))
    assert type(c) is type(t) and c.get_params(deep=False) == t.get_params() and not hasattr(c, "threshold_")


def test_pot_keeps_its_level() -> None:
    s = np.random.default_rng(3).exponential(size=5000)
    t = POT(1e-3, level=0.9)
    assert parse_threshold(t).level == 0.9
    assert t.clone().level == 0.9
    assert Threshold.from_dict(_json(t.to_dict())).level == 0.9
    at_90 = POT(1e-3, level=0.9).fit(s).threshold_
    at_98 = POT(1e-3).fit(s).threshold_
    assert at_90 != at_98
    assert Threshold.from_dict(_json(t.to_dict())).fit(s).threshold_ == at_90  # unfitted round trip, then fit
    assert parse_threshold(t).fit(s).threshold_ == at_90
    back = Threshold.from_dict(_json(POT(1e-3, level=0.9).fit(s).to_dict()))
    assert back.threshold_ == at_90 and back.level == 0.9
    assert t != POT(1e-3) and t.spec == POT(1e-3).spec == "pot:0.001"  # the spec grammar is unchanged
    numpy_params = POT(np.float64(1e-3), level=np.float32(0.9)).to_dict()
    assert json.loads(json.dumps(numpy_params))["params"] == {"risk": 1e-3, "level": float(np.float32(0.9))}


def test_repr_shows_the_non_default_params() -> None:
    assert repr(POT(1e-3, level=0.9)) == "POT(risk=0.001, level=0.9)"
    assert repr(POT()) == "POT()"
    assert repr(Quantile(0.9)) == "Quantile(q=0.9)"
    assert repr(BestF1()) == "BestF1()"
    assert repr(SPOT(1e-3, depth=5)) == "SPOT(risk=0.001, depth=5)"


def test_equality_is_class_and_params() -> None:
    assert POT(1e-3, level=0.9) == POT(risk=1e-3, level=0.9)
    assert POT(1e-3, level=0.9) != POT(1e-3, level=0.95)
    assert Quantile(0.9) != Contamination(0.9)
    assert SPOT(1e-3) != POT(1e-3)
    assert len({POT(1e-3, level=0.9), POT(1e-3, level=0.9), POT(1e-3)}) == 2


def test_old_format_loads() -> None:
    t = Threshold.from_dict({"spec": "pot:0.0001", "threshold": 1.5, "info": {}})
    assert type(t) is POT and t == POT(1e-4) and t.threshold_ == 1.5 and t.info_ == {}
    np.testing.assert_array_equal(t.predict([1.0, 2.0]), [False, True])
    old = Threshold.from_dict({"spec": "false-alarm:0.05", "threshold": 2.0, "info": {"achievable_alpha": 0.01}})
    assert old == FalseAlarmRate(0.05) and old.info_ == {"achievable_alpha": 0.01}
    assert not hasattr(Threshold.from_dict({"spec": "best-f1"}), "threshold_")


@pytest.mark.parametrize(
    ("d", "error", "words"),
    [
        ("pot:0.01", an.InputError, "must be a dict"),
        ({}, an.InputError, "needs 'name' and 'params'"),
        ({"name": "nope", "params": {}}, an.ParameterError, "unknown threshold 'nope'"),
        ({"spec": "nope:1"}, an.ParameterError, "unknown threshold"),
        ({"spec": 3}, an.InputError, "must be a string"),
        ({"name": "pot", "params": [1e-3]}, an.InputError, "must be a dict"),
        ({"name": "pot", "params": {"risk": 1e-3, "lvl": 0.9}}, an.ParameterError, "unknown ['lvl']"),
        ({"name": "quantile", "params": {}}, an.ParameterError, "missing ['q']"),
        ({"name": "quantile", "params": {"q": 2.0}}, an.ParameterError, "in (0, 1)"),
        ({"name": "quantile", "params": {"q": 0.5}, "threshold": "x"}, an.InputError, "expected a number"),
        ({"name": "quantile", "params": {"q": 0.5}, "threshold": 1.0, "info": [1]}, an.InputError, "dict of numbers"),
        ({"name": "spot", "params": {"risk": 1e-3}, "threshold": 1.0}, an.InputError, "needs its 'state'"),
    ],
)
def test_damaged_dicts_raise(d: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        Threshold.from_dict(d)
    assert words in str(info.value)


def test_from_dict_of_another_class_raises() -> None:
    with pytest.raises(an.ParameterError, match=r"POT\.from_dict got a saved SPOT"):
        POT.from_dict(SPOT(1e-3).to_dict())


def test_only_spot_is_streaming() -> None:
    assert [cls for cls in THRESHOLDS.values() if cls.streaming] == [SPOT]
    assert Threshold.streaming is False


def test_spot_and_dspot_specs() -> None:
    assert THRESHOLDS["spot"] is SPOT and "dspot" not in THRESHOLDS
    assert parse_threshold("spot:1e-3") == SPOT(1e-3)
    assert parse_threshold("spot") == SPOT()
    assert parse_threshold("dspot:1e-3") == SPOT(1e-3, depth=10)
    assert SPOT(1e-3, depth=10).spec == "dspot:0.001" and SPOT(1e-3).spec == "spot:0.001"
    with pytest.raises(an.ParameterError, match="'dspot'"):
        parse_threshold("nope")
    with pytest.raises(an.ParameterError, match="refit_every >= 1"):
        SPOT(refit_every=0)
    with pytest.raises(an.ParameterError, match="level"):
        SPOT(level=1.0)


# -- SPOT's stream state ----------------------------------------------------------------------------------

SPOTS = [SPOT(1e-3), SPOT(1e-3, level=0.9, refit_every=20), SPOT(1e-2, level=0.95, depth=20, refit_every=3)]
SPOT_IDS = ["spot", "spot-refit20", "dspot"]


@pytest.mark.parametrize("spot", SPOTS, ids=SPOT_IDS)
def test_spot_round_trip_mid_stream_equals_one_run(spot: SPOT) -> None:
    e = _errors()
    whole = parse_threshold(spot).fit(e[:1000])
    all_at_once = whole.run(e[1000:])
    half = parse_threshold(spot).fit(e[:1000])
    first = half.run(e[1000:1900])
    back = Threshold.from_dict(_json(half.to_dict()))
    assert isinstance(back, SPOT) and back == spot and back.state_ == half.state_
    assert back.threshold_ == half.threshold_ and back.n_ == half.n_
    rest = back.run(e[1900:])
    np.testing.assert_array_equal(np.r_[first.flags, rest.flags], all_at_once.flags)
    np.testing.assert_array_equal(np.r_[first.thresholds, rest.thresholds], all_at_once.thresholds)
    assert back.state_ == whole.state_ and back.threshold_ == whole.threshold_
    assert back.initial_state() == whole.initial_state()  # new streams still start where fit left them
    assert all_at_once.flags[1000:1010].all()  # the burst is found, so the test compares real flags


@pytest.mark.parametrize("spot", SPOTS, ids=SPOT_IDS)
def test_step_is_pure_and_run_is_step_on_the_own_state(spot: SPOT) -> None:
    e = _errors()
    fitted = parse_threshold(spot).fit(e[:1000])
    assert isinstance(fitted, SPOT)
    before, state = fitted.to_dict(), fitted.initial_state()
    state_before = state.to_dict()
    res, new = fitted.step(e[1000:], state)
    assert fitted.to_dict() == before and state.to_dict() == state_before and fitted.state_ is state
    assert new.n > state.n and new.peaks.size > state.peaks.size
    with pytest.raises(ValueError):
        state.peaks[0] = 0.0  # the state's arrays are read-only
    ran = fitted.run(e[1000:])
    np.testing.assert_array_equal(ran.flags, res.flags)
    np.testing.assert_array_equal(ran.thresholds, res.thresholds)
    assert fitted.state_ == new and fitted.threshold_ == new.threshold
    assert fitted.initial_state() == state and fitted.initial_state().to_dict() == state_before


def test_interleaved_streams_equal_each_alone() -> None:
    spot = SPOT(1e-3, level=0.95, depth=10, refit_every=2).fit(_errors()[:1000])
    a, b = _errors(seed=1)[1000:], _errors(seed=2)[1000:] * 1.1
    alone_a, _ = spot.step(a, spot.initial_state())
    alone_b, _ = spot.step(b, spot.initial_state())
    sa = sb = spot.initial_state()
    fa, fb, ta, tb = [], [], [], []
    for lo in range(0, a.size, 300):
        ra, sa = spot.step(a[lo : lo + 300], sa)
        rb, sb = spot.step(b[lo : lo + 300], sb)
        fa.append(ra.flags), ta.append(ra.thresholds), fb.append(rb.flags), tb.append(rb.thresholds)
    np.testing.assert_array_equal(np.concatenate(fa), alone_a.flags)
    np.testing.assert_array_equal(np.concatenate(ta), alone_a.thresholds)
    np.testing.assert_array_equal(np.concatenate(fb), alone_b.flags)
    np.testing.assert_array_equal(np.concatenate(tb), alone_b.thresholds)
    assert not np.array_equal(alone_a.thresholds, alone_b.thresholds)  # the streams did differ


def test_spot_state_to_dict_is_json_and_round_trips() -> None:
    spot = SPOT(1e-3, depth=5).fit(_errors()[:1000])
    _, state = spot.step(_errors()[1000:2000], spot.initial_state())
    d = state.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {"initial", "peaks", "n", "window", "new_peaks", "threshold"} and len(d["window"]) == 5
    back = SPOTState.from_dict(d)
    assert back == state and not back.peaks.flags.writeable
    for bad in ({**d, "n": "x"}, {**d, "peaks": [float("nan")]}, {k: v for k, v in d.items() if k != "window"}):
        with pytest.raises(an.InputError, match="SPOT state"):
            SPOTState.from_dict(bad)


def test_spot_predict_learns_nothing() -> None:
    e = _errors()
    spot = SPOT(1e-3).fit(e[:1000])
    state = spot.state_
    flags = spot.predict(e[1000:])
    assert spot.state_ is state
    np.testing.assert_array_equal(flags, e[1000:] > spot.threshold_)
    dspot = SPOT(1e-3, depth=10).fit(e[:1000])
    level = float(np.mean(e[990:1000]))
    np.testing.assert_array_equal(dspot.predict(e[1000:]), e[1000:] - level > dspot.threshold_)
    with pytest.raises(an.ThresholdError, match="not initialised"):
        SPOT().predict(e)
    with pytest.raises(an.ThresholdError, match="not initialised"):
        SPOT().initial_state()
    with pytest.raises(an.InputError, match="SPOTState"):
        spot.step(e, None)  # type: ignore[arg-type]


# -- Calibrator -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_scores", [7, SORTED_COUNT_MIN + 5])
def test_calibrator_equals_conformal_p_values(n_scores: int) -> None:
    rng = np.random.default_rng(0)
    cal = rng.normal(size=300).round(1)  # ties
    scores = rng.normal(size=n_scores).round(1)
    c = Calibrator(cal)
    np.testing.assert_array_equal(c.p_values(scores), conformal_p_values(cal, scores))
    np.testing.assert_array_equal(c.scores, np.sort(cal))
    assert c.n == 300 and c.scores.dtype == np.float64
    grid = scores.reshape(-1, 1) if n_scores == 7 else scores
    np.testing.assert_array_equal(c.p_values(grid), conformal_p_values(cal, grid))


def test_calibrator_scores_are_read_only_and_copied() -> None:
    raw = np.array([3.0, 1.0, 2.0])
    c = Calibrator(raw)
    raw[0] = 100.0
    np.testing.assert_array_equal(c.scores, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        c.scores[0] = 0.0


def test_calibrator_round_trip() -> None:
    c = Calibrator(np.random.default_rng(1).normal(size=50))
    d = _json(c.to_dict())
    assert set(d) == {"scores"} and d["scores"] == sorted(d["scores"])
    back = Calibrator.from_dict(d)
    assert back == c and back.n == 50
    np.testing.assert_array_equal(back.p_values([0.0, 5.0]), c.p_values([0.0, 5.0]))


@pytest.mark.parametrize(
    ("scores", "words"),
    [([], "empty"), ([[1.0, 2.0]], "1-D"), ([1.0, np.nan], "NaN or inf"), ([1.0, np.inf], "NaN or inf")],
)
def test_calibrator_rejects_bad_scores(scores: Any, words: str) -> None:
    with pytest.raises(an.InputError, match=words):
        Calibrator(scores)


def test_calibrator_from_damaged_dict() -> None:
    for bad in ({}, {"scores": "1,2"}, [1.0]):
        with pytest.raises(an.InputError, match="Calibrator state"):
            Calibrator.from_dict(bad)
    with pytest.raises(an.InputError, match="empty"):
        Calibrator.from_dict({"scores": []})
