"""`image-knn`: nearest normal images in blurred pixels and gradient-orientation histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import anomalia as an
from anomalia.nn.orientation import orientation_histograms
from test_images import _cli, _png, blobs, check_defects_found, with_defect

from conftest import real_data


@pytest.fixture(scope="module")
def fitted() -> an.ImageKNN:
    return an.ImageKNN(random_state=0).fit(blobs(np.random.default_rng(0), 200))


def test_defects_score_higher_and_the_map_finds_them(fitted: an.ImageKNN) -> None:
    check_defects_found(fitted)
    assert fitted.heat_scale() > 0


def test_each_view_is_on_the_scale_of_normal_images(fitted: an.ImageKNN) -> None:
    views = fitted.view_scores(blobs(np.random.default_rng(2), 200)[:, None])
    assert views.shape == (200, 2)
    # held-out normal images: each view's median near 0 and its spread near 1 (median / IQR of normal distances)
    assert np.all(np.abs(np.median(views, axis=0)) < 0.5)
    iqr = np.subtract(*np.percentile(views, [75, 25], axis=0))
    assert np.all((iqr > 0.5) & (iqr < 2.0))


def test_orientation_histograms_ignore_brightness_and_see_rotation() -> None:
    x = torch.from_numpy(blobs(np.random.default_rng(3), 4))[:, None]
    h = orientation_histograms(x)
    assert h.shape == (4, 8 * 7 * 7)  # 8 orientations in 7 x 7 half-overlapping cells of 4 px on 16 px
    np.testing.assert_allclose(torch.linalg.norm(h, dim=1).numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(orientation_histograms(3 * x + 20).numpy(), h.numpy(), atol=1e-5)
    turned = orientation_histograms(x.transpose(-2, -1))
    assert torch.linalg.norm(turned - h, dim=1).min() > 0.1


def test_pixels_only_and_other_settings_round_trip(tmp_path: Path) -> None:
    X = blobs(np.random.default_rng(4), 120)
    det = an.ImageKNN(gradients=False, method="largest", n_neighbors=3, smoothing=0, random_state=0).fit(X)
    assert det.gradient_reference_ is None and det.view_scores(X[:5, None]).shape == (5, 1)
    det.save(tmp_path / "m")
    back = an.load(tmp_path / "m")
    np.testing.assert_array_equal(back.anomaly_score(X[:10]), det.anomaly_score(X[:10]))
    np.testing.assert_array_equal(back.anomaly_map(X[:3]), det.anomaly_map(X[:3]))
    small = an.ImageKNN(max_reference=30, random_state=0).fit(X)
    assert small.reference_.shape == (30, 256) and small.gradient_reference_.shape[0] == 30
    with pytest.raises(an.ParameterError, match="gradients"):
        an.ImageKNN(gradients="yes").fit(X)


def test_command_line_fits_and_scores_an_image_folder_with_image_knn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    root = tmp_path / "parts"
    for i, img in enumerate(blobs(rng, 30)):
        _png(root / "train" / "good" / f"{i:03d}.png", img)
    for i, img in enumerate(with_defect(blobs(rng, 3))[0]):
        _png(root / "test" / "scratch" / f"{i:03d}.png", img)
    for i, img in enumerate(blobs(rng, 3)):
        _png(root / "test" / "good" / f"{i:03d}.png", img)
    model, scores, heat = tmp_path / "model", tmp_path / "scores.csv", tmp_path / "heat"
    code, out, err = _cli(["fit", root, "--out", model, "--model", "image-knn"], capsys)
    assert "image-knn" in out
    assert code == 0, err
    assert an.read_manifest(model)["detector"]["name"] == "image-knn"
    code, _, err = _cli(["score", model, root, "--out", scores, "--heatmaps", heat], capsys)
    assert code == 0, err
    table = pd.read_csv(scores)
    assert len(table) == 6 and len(list(heat.iterdir())) == 6
    worst = table.sort_values("score", ascending=False)["path"].head(3)
    assert all("scratch" in p for p in worst)
    code, out, err = _cli(["evaluate", model, root, "--report", tmp_path / "report.html"], capsys)
    assert code == 0, err
    assert "ROC-AUC" in out and 'data-plot="image-0"' in (tmp_path / "report.html").read_text()


@pytest.mark.realdata
def test_fashion_mnist_quality_floor() -> None:
    """Shirts, the hardest class (0.83 for the conv autoencoder and raw-pixel kNN on the full protocol)."""
    z = np.load(real_data("images", "fashion_mnist", "fashion_mnist.npz"))
    x_train, y_train, x_test, y_test = z["x_train"], z["y_train"], z["x_test"][:2000], z["y_test"][:2000]
    det = an.ImageKNN(random_state=0).fit(x_train[y_train == 6][:2000])
    auc = roc_auc_score(y_test != 6, det.anomaly_score(x_test))
    assert auc > 0.83, f"ROC-AUC on Fashion-MNIST shirts: {auc:.3f}"
