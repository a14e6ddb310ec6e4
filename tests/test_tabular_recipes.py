"""The tabular defaults: the autoencoder's per-feature error weights, kNN without scaling, and
the ensemble's member sets with and without contamination."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import anomalia as an
from anomalia._core import ParameterError


def _table(rng: np.random.Generator, n: int) -> np.ndarray:
    """Three correlated features and one that nothing predicts (pure noise, ten times the scale)."""
    z = rng.normal(size=(n, 1))
    X = np.hstack([z, -z, 0.5 * z, 10.0 * rng.normal(size=(n, 1))]) + 0.05 * rng.normal(size=(n, 4))
    return X.astype(np.float32)


FIT = {"hidden": (8, 1), "epochs": 40, "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def weighted() -> an.AutoEncoder:
    return an.AutoEncoder(**FIT).fit(_table(np.random.default_rng(0), 400))


@pytest.fixture(scope="module")
def plain() -> an.AutoEncoder:
    return an.AutoEncoder(**FIT, normalize_errors=False).fit(_table(np.random.default_rng(0), 400))


def test_each_feature_error_is_divided_by_its_mean_training_error(weighted, plain) -> None:
    X = _table(np.random.default_rng(0), 400)
    w = weighted.net_.feature_weight.numpy().astype(np.float64)
    np.testing.assert_array_equal(plain.net_.feature_weight.numpy(), np.ones(4, np.float32))
    # the same seed trains the same network (the weights are set after training); only the weights differ
    raw = plain._feature_scores(X)
    np.testing.assert_allclose(weighted._feature_scores(X), raw * w, rtol=1e-4, atol=1e-7)
    # the unpredictable noise feature gets the smallest weight, so it no longer dominates the score
    assert int(np.argmin(w)) == 3 and w[3] < 0.5 * w[:3].min()
    np.testing.assert_allclose(weighted.anomaly_score(X[:50]), (raw[:50] * w).mean(axis=1), rtol=1e-4)


def test_weights_help_when_one_feature_is_noise(weighted, plain) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    normal = _table(rng, 400)
    broken = _table(rng, 40)
    broken[:, 1] += 1.0  # one standard deviation off the line the other features put it on
    X, y = np.vstack([normal, broken]), np.r_[np.zeros(400), np.ones(40)]
    auc_w, auc_plain = roc_auc_score(y, weighted.anomaly_score(X)), roc_auc_score(y, plain.anomaly_score(X))
    assert auc_w > 0.75 and auc_w > auc_plain + 0.05, (auc_w, auc_plain)  # measured 0.82 against 0.70


def test_weights_survive_save_and_load_and_old_folders_load_with_unit_weights(weighted, tmp_path) -> None:
    X = _table(np.random.default_rng(2), 100)
    weighted.save(tmp_path / "ae")
    back = an.load(tmp_path / "ae")
    np.testing.assert_array_equal(back.net_.feature_weight.numpy(), weighted.net_.feature_weight.numpy())
    np.testing.assert_array_equal(back.anomaly_score(X), weighted.anomaly_score(X))
    # a model saved before the weights: one network whose keys start with "net.encoder" / "net.decoder"
    meta, arrays = weighted._get_state()
    old = {k.replace("net.nets.0.", "net.", 1): v for k, v in arrays.items() if k != "net.feature_weight"}
    assert any(k.startswith("net.encoder.") for k in old)
    legacy = an.AutoEncoder(hidden=(8, 1))
    legacy._set_state(meta, old)
    np.testing.assert_array_equal(legacy.net_.feature_weight.numpy(), np.ones(4, np.float32))
    w = weighted.net_.feature_weight.numpy().astype(np.float64)
    np.testing.assert_allclose(legacy.anomaly_score(X), (weighted._feature_scores(X) / w).mean(axis=1), rtol=1e-4)


def test_several_networks_average_their_squared_errors() -> None:
    X = _table(np.random.default_rng(3), 300)
    det = an.AutoEncoder(hidden=(8, 1), epochs=5, n_nets=3, normalize_errors=False, random_state=0).fit(X)
    net = det.net_
    assert len(net.nets) == 3
    z = torch.from_numpy(det.scaler_.transform(X[:20]))
    with torch.no_grad():
        each = [((m(z) - z) ** 2).mean(dim=1).numpy() for m in net.nets]
    np.testing.assert_allclose(det.anomaly_score(X[:20]), np.mean(each, axis=0), rtol=1e-5)
    assert det.expected(X[:20]).shape == (20, 4)
    with pytest.raises(ParameterError, match="n_nets"):
        an.AutoEncoder(n_nets=0).fit(X)


def test_knn_without_scaling_measures_raw_distances() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 3)).astype(np.float32) * np.array([1.0, 100.0, 0.01], np.float32)
    det = an.KNN(n_neighbors=1, scaling="none", random_state=0).fit(X)
    q = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(det.anomaly_score(q), np.sqrt(((q[:, None] - det.reference_[None]) ** 2).sum(-1)).min(1))
    with pytest.raises(ParameterError, match="scaling"):
        an.KNN(scaling="minmax").fit(X)


def test_ensemble_default_members_follow_contamination(tmp_path) -> None:
    X = _table(np.random.default_rng(5), 300)
    clean = an.Ensemble(random_state=0).fit(X)
    assert [m.name for m in clean.members_] == ["autoencoder", "knn"]
    dirty = an.Ensemble(contamination=0.1, random_state=0).fit(X)
    assert [m.name for m in dirty.members_] == ["autoencoder", "vae", "isolation-forest", "knn"]
    assert dirty.members_[3].scaling == "none" and clean.members_[1].scaling == "standard"
    dirty.save(tmp_path / "ens")
    back = an.load(tmp_path / "ens")
    assert back.members_[3].scaling == "none"
    np.testing.assert_allclose(back.anomaly_score(X[:30]), dirty.anomaly_score(X[:30]), rtol=1e-6)
