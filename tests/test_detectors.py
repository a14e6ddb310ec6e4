"""Behaviour of the core detectors on data where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest as SkIsolationForest

import anomalia as an
from anomalia.metrics import roc_auc


def _auc(det: an.BaseDetector, normal: np.ndarray, anomalies: np.ndarray) -> float:
    s = det.anomaly_score(np.r_[normal, anomalies])
    return roc_auc(np.r_[np.zeros(len(normal)), np.ones(len(anomalies))], s)


@pytest.mark.parametrize("cls", [an.AutoEncoder, an.VAE, an.PCA, an.IsolationForest])
def test_detectors_separate_obvious_anomalies(cls, blobs) -> None:
    train, normal, anomalies = blobs
    det = cls(random_state=0).fit(train)
    assert _auc(det, normal, anomalies) > 0.9


def test_default_threshold_keeps_the_false_alarm_rate() -> None:
    rng = np.random.default_rng(5)
    cov = np.eye(6) + 0.8 * (np.ones((6, 6)) - np.eye(6))
    train = rng.multivariate_normal(np.zeros(6), cov, 25_000)  # 5,000 calibration rows: FAR sd about 0.003
    det = an.PCA(threshold="false-alarm:0.05", random_state=0).fit(train)
    fresh = rng.multivariate_normal(np.zeros(6), cov, 20_000)
    assert abs(det.is_anomaly(fresh).mean() - 0.05) < 0.015
    p = det.p_value(fresh)
    assert abs((p <= 0.05).mean() - det.is_anomaly(fresh).mean()) < 1e-12


def test_isolation_forest_scores_equal_scikit_learns(blobs) -> None:
    train, normal, _ = blobs
    det = an.IsolationForest(random_state=0).fit(train)
    sk = SkIsolationForest(random_state=0)
    # same trees: rebuild scikit-learn's forest with the seed the detector passed on
    rng = np.random.default_rng(0)
    from anomalia._core import child_seed

    _ = child_seed(rng)
    train_idx, _ = det._split(train.shape[0], rng)
    sk.set_params(random_state=child_seed(rng)).fit(train[train_idx])
    np.testing.assert_allclose(det.anomaly_score(normal), -sk.score_samples(normal), rtol=1e-12)


def test_explain_points_at_the_broken_feature(blobs) -> None:
    train, normal, _ = blobs
    broken = normal[:20].copy()
    broken[:, 2] += 8.0
    for cls in (an.AutoEncoder, an.VAE, an.PCA):
        shares = cls(random_state=0).fit(train).explain(broken)
        assert (shares.argmax(axis=1) == 2).mean() > 0.8, cls.__name__
    shares = an.explain.occlusion(an.IsolationForest(random_state=0).fit(train), broken)
    assert (shares.argmax(axis=1) == 2).mean() > 0.8


def test_contamination_option_resists_anomalies_in_training(rng: np.random.Generator) -> None:
    cov = np.eye(8) + 0.9 * (np.ones((8, 8)) - np.eye(8))
    clean = rng.multivariate_normal(np.zeros(8), cov, 2000).astype(np.float32)
    cluster = (rng.normal(size=(1, 8)) * 3 + 0.3 * rng.normal(size=(200, 8))).astype(np.float32)
    train = np.r_[clean, cluster]  # 9 % of "normal" data are a tight anomalous cluster
    test_normal = rng.multivariate_normal(np.zeros(8), cov, 500).astype(np.float32)
    test_anom = (cluster[:1] + 0.3 * rng.normal(size=(100, 8))).astype(np.float32)
    plain = an.AutoEncoder(hidden=(16, 4), random_state=0).fit(train)
    robust = an.AutoEncoder(hidden=(16, 4), contamination=0.1, random_state=0).fit(train)
    assert _auc(robust, test_normal, test_anom) > _auc(plain, test_normal, test_anom) + 0.1
    assert robust.threshold_.spec == "contamination:0.1"


def test_partial_fit_learns_the_new_normal_without_forgetting_the_old(rng: np.random.Generator) -> None:
    cov = np.eye(6) + 0.8 * (np.ones((6, 6)) - np.eye(6))
    old = rng.multivariate_normal(np.zeros(6), cov, 2000).astype(np.float32)
    new = rng.multivariate_normal(np.full(6, 4.0), cov, 2000).astype(np.float32)
    det = an.AutoEncoder(hidden=(16, 3), random_state=0, threshold="false-alarm:0.05").fit(old)
    before_new = det.is_anomaly(new[:500]).mean()
    det.partial_fit(new)
    assert det.is_anomaly(new[-500:]).mean() < 0.15 < before_new
    assert det.is_anomaly(old[-500:]).mean() < 0.15  # the old normal is still normal
    far = rng.normal(0, 1, size=(200, 6)).astype(np.float32) * 4 + np.array([8, -8, 8, -8, 8, -8], np.float32)
    assert det.is_anomaly(far).mean() > 0.9


def test_labelled_threshold_via_fit_threshold(blobs) -> None:
    train, normal, anomalies = blobs
    det = an.VAE(random_state=0, threshold="best-f1").fit(train)
    with pytest.raises(an.NotFittedError, match="needs labels"):
        det.is_anomaly(normal)
    X_val = np.r_[normal, anomalies]
    y_val = np.r_[np.zeros(len(normal)), np.ones(len(anomalies))]
    det.fit_threshold(X_val, y_val)
    assert det.threshold_.info_["f1"] > 0.8
    with pytest.raises(an.ThresholdError, match="needs labelled anomalies"):
        det.fit_threshold(normal, np.zeros(len(normal)), threshold="precision:0.9")


def test_vae_scores_do_not_depend_on_the_batch(blobs) -> None:
    train, normal, _ = blobs
    det = an.VAE(random_state=0).fit(train)
    whole = det.anomaly_score(normal)
    one = np.array([det.anomaly_score(normal[i : i + 1])[0] for i in range(10)])
    np.testing.assert_allclose(one, whole[:10], rtol=1e-5)
