"""Saved models: JSON + safetensors, no pickle, and clear errors for every damaged folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import anomalia as an


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, an.BaseDetector, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    det = an.AutoEncoder(hidden=(8, 2), epochs=3, threshold="quantile:0.99", random_state=0).fit(X)
    path = det.save(tmp_path_factory.mktemp("m") / "model")
    return path, det, X.to_numpy()


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_manifest_holds_what_a_reader_needs(saved) -> None:
    path, det, _ = saved
    m = an.read_manifest(path)
    assert m["format_version"] == 2 and m["version"] and m["preprocess"] is None
    d = m["detector"]
    assert d["name"] == "autoencoder" and d["input_kind"] == "table"
    assert d["params"]["hidden"] == [8, 2] and d["params"]["threshold"] == "quantile:0.99"
    assert d["schema"]["columns"] == list("abcd")
    assert len(d["state"]["scaler"]["mean"]) == 4
    assert len(d["calibration"]["scores"]) == det.calibration_scores_.size
    assert d["threshold"]["spec"] == "quantile:0.99" and d["threshold"]["threshold"] == det.threshold_.threshold_
    assert sorted(p.name for p in path.iterdir()) == ["anomalia.json", "weights.safetensors"]


def test_the_folder_holds_no_data_rows_unless_asked(saved, tmp_path: Path) -> None:
    path, _, X = saved
    tensors = an.read_manifest(path)["weights"]["tensors"]
    assert not [k for k in tensors if k.startswith("buffer.")]
    assert tensors["feature_median"]["shape"] == [4]
    kept = an.AutoEncoder(hidden=(8, 2), epochs=2, keep_rows=True, random_state=0).fit(X).save(tmp_path / "kept")
    tensors = an.read_manifest(kept)["weights"]["tensors"]
    assert tensors["buffer.replay"]["shape"][1] == 4 and "buffer.calibration_rows" in tensors
    # without rows a loaded detector still keeps learning: on the new rows, recalibrated with the saved scores
    back = an.load(path)
    n_cal = back.calibration_scores_.size
    back.partial_fit(X[:50])
    assert back.n_updates_ == 1 and back.calibration_scores_.size == n_cal + 10


def test_saving_replaces_a_model_whole_and_refuses_a_folder_of_other_files(saved, tmp_path: Path) -> None:
    _, det, X = saved
    target = det.save(tmp_path / "m")
    first = an.read_manifest(target)["version"]
    other = an.PCA(random_state=0).fit(X)
    other.save(target)  # a model folder is replaced by the new model
    assert an.read_manifest(target)["detector"]["name"] == "pca" and an.read_manifest(target)["version"] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary or old folder left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(an.BundleError, match="holds other files"):
        det.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


V01 = Path(__file__).parent / "data" / "v0.1"


def test_folders_written_by_0_1_still_load_with_the_same_scores() -> None:
    from anomalia.model import Model

    table = Model.load(V01 / "table-model")  # preprocess.json beside the manifest
    assert table.input_columns == ["a", "b", "color"]
    rows = table.score(pd.read_csv(V01 / "table.csv"), explain="all")
    np.testing.assert_array_equal(rows.score, np.load(V01 / "table-scores.npy"))
    series = an.load(V01 / "series-model")
    frame = pd.read_csv(V01 / "series.csv", index_col="ts", parse_dates=True)
    np.testing.assert_allclose(series.anomaly_score(frame), np.load(V01 / "series-scores.npy"), rtol=1e-6, atol=1e-9)
    new = frame.iloc[-20:].copy()
    new.index = new.index + pd.Timedelta("120min")
    np.testing.assert_allclose(series.update(new), np.load(V01 / "series-update.npy"), rtol=1e-6, atol=1e-9)
    pca = an.load(V01 / "pot-model")
    np.testing.assert_array_equal(pca.anomaly_score(np.load(V01 / "pot-data.npy")), np.load(V01 / "pot-scores.npy"))


def test_a_0_1_manifest_that_cannot_be_read_asks_for_a_refit(tmp_path: Path) -> None:
    p = _copy(V01 / "table-model", tmp_path / "m")
    m = json.loads((p / "anomalia.json").read_text())
    del m["training"]
    (p / "anomalia.json").write_text(json.dumps(m))
    with pytest.raises(an.BundleError, match=r"anomalia 0\.1.*re-fit"):
        an.load(p)


def test_threshold_parameters_survive_save_load_and_clone(tmp_path: Path) -> None:
    from sklearn.base import clone

    X = np.random.default_rng(0).normal(size=(3000, 3))
    det = an.PCA(n_components=2, threshold=an.POT(1e-3, level=0.9), random_state=0).fit(X)
    assert det.threshold_.level == 0.9  # regression: 0.1 lost the level (silently 0.98) on clone and save/load
    assert clone(det).threshold.level == 0.9
    back = an.load(det.save(tmp_path / "m"))
    assert back.threshold.level == 0.9 and back.threshold_.level == 0.9
    assert back.threshold_.threshold_ == det.threshold_.threshold_
    refit = clone(back).fit(X)
    assert refit.threshold_.threshold_ == det.threshold_.threshold_
    assert an.PCA(n_components=2, threshold="pot:1e-3", random_state=0).fit(X).threshold_.threshold_ != (
        det.threshold_.threshold_
    )


def test_loaded_model_checks_the_saved_schema(saved) -> None:
    path, _, X = saved
    back = an.load(path)
    with pytest.raises(an.SchemaError):
        back.anomaly_score(pd.DataFrame(X, columns=list("abce")))


def test_other_format_version(saved, tmp_path: Path) -> None:
    p = _copy(saved[0], tmp_path / "m")
    m = json.loads((p / "anomalia.json").read_text())
    m["format_version"] = 99
    (p / "anomalia.json").write_text(json.dumps(m))
    with pytest.raises(an.BundleError, match="format version 99"):
        an.load(p)


def test_missing_and_corrupted_weights(saved, tmp_path: Path) -> None:
    p = _copy(saved[0], tmp_path / "m")
    data = bytearray((p / "weights.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (p / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(an.BundleError, match="corrupted"):
        an.load(p)
    (p / "weights.safetensors").unlink()
    with pytest.raises(an.BundleError, match="no weights file"):
        an.load(p)


def test_weights_of_another_model(saved, tmp_path: Path) -> None:
    p = _copy(saved[0], tmp_path / "m")
    other = an.AutoEncoder(hidden=(8, 3), epochs=2, random_state=0).fit(np.random.default_rng(1).normal(size=(100, 4)))
    q = other.save(tmp_path / "other")
    (p / "weights.safetensors").write_bytes((q / "weights.safetensors").read_bytes())
    m = json.loads((p / "anomalia.json").read_text())
    m["weights"]["sha256"] = json.loads((q / "anomalia.json").read_text())["weights"]["sha256"]
    (p / "anomalia.json").write_text(json.dumps(m))
    with pytest.raises(an.BundleError, match=r"shape|manifest"):
        an.load(p)


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(an.BundleError, match="does not exist"):
        an.load(tmp_path / "nothing")
    with pytest.raises(an.BundleError, match=r"no anomalia\.json"):
        an.load(tmp_path)
    (tmp_path / "anomalia.json").write_text("{not json")
    with pytest.raises(an.BundleError, match="not valid JSON"):
        an.load(tmp_path)


def test_saving_an_unfitted_detector_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(an.NotFittedError):
        an.VAE().save(tmp_path / "m")


def test_no_pickle_in_the_package() -> None:
    src = Path(an.__file__).parent
    for f in src.rglob("*.py"):
        text = f.read_text()
        for bad in ("import pickle", "joblib", "torch.load(", "dill"):
            assert bad not in text, f"{f} uses {bad}"


def test_an_image_folder_model_of_0_1_loads_with_its_reading_and_heat_scale(tmp_path: Path) -> None:
    from anomalia.model import Model
    from anomalia.workflows.images import score_images

    m = Model.load(V01 / "images-model")  # images.json beside the manifest
    assert m.input_kind == "images" and m.image_reading.size == (12, 12) and m.image_reading.mode == "L"
    files = sorted(str(p) for p in (V01 / "images" / "test").rglob("*.png"))
    rows = m.score(files, maps=True)
    np.testing.assert_allclose(rows.score, np.load(V01 / "images-scores.npy"), rtol=1e-6)
    np.testing.assert_allclose(rows.anomaly_map, np.load(V01 / "images-maps.npy"), rtol=1e-5, atol=1e-7)
    assert m.detector.heat_scale() > 0  # 0.1 kept the calibration images: the scale comes from them
    res = score_images(m, V01 / "images", tmp_path / "s.csv", heatmaps=tmp_path / "heat")
    assert res.n_rows == 8 and len(list((tmp_path / "heat").glob("*.png"))) == 8
