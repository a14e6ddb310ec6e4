"""The ensemble keeps the false-alarm guarantee and saves its members in one bundle; kNN; the AE's widths."""

from __future__ import annotations

import json

import numpy as np
import pytest

import anomalia as an
from anomalia.detectors.shape_defaults import autoencoder_hidden

from conftest import real_data

FAST = (
    {"name": "autoencoder", "params": {"hidden": (8, 4), "epochs": 5, "batch_size": 128}},
    {"name": "isolation-forest", "params": {"n_estimators": 25}},
    {"name": "knn", "params": {"max_reference": 1000}},
)


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    W = np.array([[1.0, 0.5, 0.0, -0.3, 0.2, 0.0], [0.0, 1.0, 0.7, 0.0, -0.5, 0.4]])
    return (rng.normal(size=(n, 2)) @ W + 0.2 * rng.normal(size=(n, 6))).astype(np.float32)


@pytest.fixture(scope="module")
def ensemble() -> an.Ensemble:
    return an.Ensemble(FAST, threshold="false-alarm:0.05", random_state=0).fit(_normal(np.random.default_rng(0), 3000))


def test_ensemble_false_alarm_rate_holds_on_held_out_normals(ensemble: an.Ensemble) -> None:
    held_out = _normal(np.random.default_rng(1), 6000)
    far = ensemble.is_anomaly(held_out).mean()
    assert abs(far - 0.05) < 0.015, far  # conformal: 600 calibration rows, 6000 test rows
    assert abs((ensemble.p_value(held_out) <= 0.05).mean() - 0.05) < 0.015


def test_ensemble_scales_come_from_member_held_out_rows_not_its_calibration(ensemble: an.Ensemble) -> None:
    assert [m.name for m in ensemble.members_] == ["autoencoder", "isolation-forest", "knn"]
    # each member was fitted on the ensemble's training rows only: 80 % of 3000
    assert all(m.n_train_rows_ + m.calibrator_.scores.size == 2400 for m in ensemble.members_)
    scaled = ensemble.member_scores(_normal(np.random.default_rng(2), 4000))
    np.testing.assert_allclose(np.median(scaled, axis=0), 0.0, atol=0.15)  # a common scale on normal rows


def test_ensemble_separates_anomalies_at_least_as_well_as_its_weakest_member(ensemble: an.Ensemble) -> None:
    rng = np.random.default_rng(3)
    normal, odd = _normal(rng, 500), _normal(rng, 100)
    odd[:, 2] += 2.5  # breaks the correlation structure
    X, y = np.r_[normal, odd], np.r_[np.zeros(500), np.ones(100)]
    from sklearn.metrics import roc_auc_score

    members = [roc_auc_score(y, m.anomaly_score(X)) for m in ensemble.members_]
    assert roc_auc_score(y, ensemble.anomaly_score(X)) >= min(members)


def test_ensemble_bundle_holds_every_member_in_one_manifest(ensemble: an.Ensemble, tmp_path) -> None:
    ensemble.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert not any(f.endswith((".pkl", ".pickle")) for f in files)
    manifest = json.loads((tmp_path / "m" / "anomalia.json").read_text())
    sections = manifest["detector"]["state"]["members"]
    assert [s["name"] for s in sections] == ["autoencoder", "isolation-forest", "knn"]
    X = _normal(np.random.default_rng(4), 50)
    np.testing.assert_array_equal(an.load(tmp_path / "m").anomaly_score(X), ensemble.anomaly_score(X))


def test_ensemble_members_given_as_detectors_round_trip(tmp_path) -> None:
    X = _normal(np.random.default_rng(5), 300)
    det = an.Ensemble([an.KNN(n_neighbors=3), an.IsolationForest(n_estimators=10)], fusion="max", random_state=0)
    det.fit(X).save(tmp_path / "m")
    back = an.load(tmp_path / "m")
    assert [m.name for m in back.members_] == ["knn", "isolation-forest"]
    np.testing.assert_array_equal(back.anomaly_score(X), det.anomaly_score(X))


def test_ensemble_bad_members_are_clear_errors() -> None:
    X = _normal(np.random.default_rng(6), 200)
    with pytest.raises(an.ParameterError, match="members"):
        an.Ensemble(members=[]).fit(X)
    with pytest.raises(an.ParameterError, match="unknown detector"):
        an.Ensemble(members=["no-such-detector"]).fit(X)
    with pytest.raises(an.ParameterError, match="must read tables"):
        an.Ensemble(members=["conv-autoencoder"]).fit(X)


def test_knn_scores_distance_to_the_normal_rows() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    det = an.KNN(n_neighbors=1, random_state=0).fit(X)
    query = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0]], np.float32)
    s = det.anomaly_score(query)
    assert s[1] > 5 * s[0]
    z = det.scaler_.transform(query)  # the reference rows are stored standardised
    np.testing.assert_allclose(s, np.sqrt(((z[:, None] - det.reference_[None]) ** 2).sum(-1)).min(1), rtol=1e-5)
    loo = det.training_scores()
    assert loo.shape == (det.reference_.shape[0],) and (loo > 0).all()  # a row's own match is left out


def test_autoencoder_widths_are_fitted_attributes_shown_by_info(tmp_path) -> None:
    assert autoencoder_hidden(30, False) == (64, 32) and autoencoder_hidden(30, True) == (64, 7)
    X = np.random.default_rng(8).normal(size=(120, 12)).astype(np.float32)
    det = an.AutoEncoder(epochs=4, contamination=0.1, random_state=0).fit(X)
    assert det.hidden_ == (64, 3) and det.net_.nets[0].encoder[2].out_features == 3
    det.save(tmp_path / "ae")
    assert an.workflows.model_info(tmp_path / "ae")["effective"] == {"hidden": [64, 3]}
    back = an.load(tmp_path / "ae")
    assert back.hidden_ == (64, 3)
    np.testing.assert_array_equal(back.anomaly_score(X), det.anomaly_score(X))


@pytest.mark.realdata
def test_knn_and_ensemble_floor_on_adbench_breastw() -> None:
    from sklearn.metrics import roc_auc_score

    z = np.load(real_data("tabular", "adbench", "4_breastw.npz"))
    X, y = z["X"].astype(np.float32), z["y"].astype(int)
    normal = np.random.default_rng(0).permutation(np.flatnonzero(y == 0))  # benchmarks/tabular.py's novelty split
    n_train = int(0.6 * normal.size)
    test = np.r_[normal[n_train:], np.flatnonzero(y == 1)]
    for det in (an.KNN(random_state=0), an.Ensemble(random_state=0)):
        auc = roc_auc_score(y[test], det.fit(X[normal[:n_train]]).anomaly_score(X[test]))
        assert auc >= 0.97, (det.name, auc)  # measured 0.988 (kNN) and 0.987 (ensemble), seed 0
