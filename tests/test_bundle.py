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
    assert m["format_version"] == 1 and m["detector"] == "autoencoder"
    assert m["params"]["hidden"] == [8, 2] and m["params"]["threshold"] == "quantile:0.99"
    assert m["schema"]["columns"] == list("abcd")
    assert len(m["state"]["scaler"]["mean"]) == 4
    assert len(m["calibration_scores"]) == det.calibration_scores_.size
    assert m["threshold"]["spec"] == "quantile:0.99" and m["threshold"]["threshold"] == det.threshold_.threshold_
    assert sorted(p.name for p in path.iterdir()) == ["anomalia.json", "weights.safetensors"]


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
