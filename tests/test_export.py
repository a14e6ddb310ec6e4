"""ONNX export: every deep detector's scoring graph scores in onnxruntime as it does in torch (|Δscore| ≤ 1e-5
relative at batch 1 and a large batch, the same decisions and p-values at the saved threshold), forecasters
also where float32 is hardest (a near-perfect forecast: its squared error is all rounding); the command
line exports and scores with it; what cannot be exported says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import anomalia as an
from anomalia.cli import main
from anomalia.data import sliding_windows
from anomalia.detectors import DeepDetector, detector_names, get_detector
from anomalia.export import NOT_EXPORTABLE, PARITY_RTOL, OnnxModel, export_onnx
from anomalia.export.onnx import relative_difference
from anomalia.model import Model
from anomalia.nn import Scorer
from anomalia.workflows import fit_file

from tabular_files import FAST, mixed_frame, write

#: Deep detectors of float arrays: every one of them must export (text detectors read strings, not arrays).
EXPORTABLE = [
    n
    for n in detector_names()
    if issubclass(get_detector(n), DeepDetector) and get_detector(n).input_kind in ("table", "series", "images")
]
#: New data per modality: rows, steps or images (the large batch).
NEW = {"table": 4096, "series": 1200, "images": 300}


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_every_deep_detector_is_listed_as_exportable() -> None:
    # the parity test below runs over these: a new deep detector joins it by being registered
    assert {"autoencoder", "vae", "lstm-forecaster", "conv-autoencoder", "geom"} <= set(EXPORTABLE)
    assert set(NOT_EXPORTABLE) <= set(detector_names()) - set(EXPORTABLE)


@pytest.mark.filterwarnings("ignore::UserWarning")  # calibration-size notes of the tiny fits
@pytest.mark.parametrize("name", EXPORTABLE)
def test_onnx_scores_match_torch(name: str, tmp_path: Path) -> None:
    cls = get_detector(name)
    det = cls(**cls.test_params, random_state=0).fit(cls._contract_data(np.random.default_rng(0), 160))
    res = export_onnx(Model(det, name=name), tmp_path / f"{name}.onnx")
    assert res.max_relative_difference <= PARITY_RTOL and res.path.stat().st_size > 0
    om = OnnxModel(res.path, threads=1)
    X = cls._contract_data(np.random.default_rng(1), NEW[det.input_kind])  # new data, never seen at fit

    expected, got = det.anomaly_score(X), om.anomaly_score(X)  # the large batch
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=PARITY_RTOL, atol=0)
    np.testing.assert_array_equal(om.is_anomaly(X), det.is_anomaly(X))
    np.testing.assert_array_equal(om.p_value(X), det.p_value(X))

    # batch 1: one row, one window, one image through the graph
    if det.input_kind == "series":
        one = np.ascontiguousarray(sliding_windows(X, det.span)[:1])
    else:
        one = X[:1] if det.input_kind == "table" else X[:1, None]
    with torch.inference_mode():
        ref = det.scoring_module()(torch.from_numpy(one)).numpy()
    np.testing.assert_allclose(om.run(one), ref, rtol=PARITY_RTOL, atol=0)
    if hasattr(det, "_float64_net"):
        near_zero_forecasts_match(det, om, cls._contract_data(np.random.default_rng(2), 1200))


def predicted_windows(det, X: np.ndarray) -> np.ndarray:
    """Windows of ``X`` whose last step is replaced by the forecaster's own forecast (float32, raw units)."""
    W = np.array(sliding_windows(X, det.span), dtype=np.float32)
    mean, scale = np.asarray(det.scaler_.mean, np.float64), np.asarray(det.scaler_.scale, np.float64)
    with torch.inference_mode():
        pred = det._float64_net()(torch.from_numpy((W[:, :-1] - mean) / scale)).numpy()
    W[:, -1] = (pred * scale + mean).astype(np.float32)
    return W


def near_zero_forecasts_match(det, om: OnnxModel, X: np.ndarray) -> None:
    """Every score the squared error of two nearly equal numbers: forecasters score in float64 inside (torch
    and the graph alike), so the relative bound holds there too; the float32 network misses it by far."""
    W = predicted_windows(det, X)
    module = det.scoring_module()
    with torch.inference_mode():
        expected = module(torch.from_numpy(W)).numpy()
    assert np.median(expected) < 1e-6  # nothing left but rounding (squared or absolute errors of float32 digits)
    np.testing.assert_allclose(om.run(W), expected, rtol=PARITY_RTOL, atol=0)  # large batch
    for i in (0, 7, 100):  # batch 1
        np.testing.assert_allclose(om.run(W[i : i + 1]), expected[i : i + 1], rtol=PARITY_RTOL, atol=0)
    mean, scale = torch.from_numpy(det.scaler_.mean), torch.from_numpy(det.scaler_.scale)
    plain = Scorer(det.net_, mean, scale, det._sample_score, flatten=False)  # the float32 network
    Xw = torch.from_numpy(np.ascontiguousarray(sliding_windows(X, det.span)))
    with torch.inference_mode():
        assert relative_difference(plain(torch.from_numpy(W)).numpy(), expected) > 100 * PARITY_RTOL
        # on ordinary windows the float64 scoring is the same network, to float32 rounding
        np.testing.assert_allclose(module(Xw).numpy(), plain(Xw).numpy(), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", sorted(NOT_EXPORTABLE))
def test_detectors_without_a_graph_say_why(name: str, tmp_path: Path) -> None:
    cls = get_detector(name)
    det = cls(random_state=0).fit(cls._contract_data(np.random.default_rng(0), 120))
    with pytest.raises(an.InputError, match=f"'{name}' cannot be exported to ONNX: {NOT_EXPORTABLE[name][:20]}"):
        export_onnx(Model(det), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture(scope="module")
def table_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, Path]:
    tmp = tmp_path_factory.mktemp("export")
    fit_file(write(mixed_frame(400), tmp / "train.csv"), out=tmp / "m", params=FAST, label_column="label")
    new = mixed_frame(600, seed=5)
    return tmp / "m", new, write(new, tmp / "new.csv")


def test_the_command_line_exports_and_scores_with_onnxruntime(table_model, tmp_path: Path, capsys) -> None:
    folder, new, data = table_model
    code, out, _ = run(["export", folder, "--format", "onnx"], capsys)
    assert code == 0 and "dynamo" in out
    manifest = json.loads((folder / "model.onnx.json").read_text())
    assert manifest["onnx"]["input"]["shape"] == ["batch", Model.load(folder).detector.n_features_in_]
    assert manifest["threshold"]["spec"] and len(manifest["calibration"]["scores"]) > 0
    assert manifest["preprocess"]["kind"] == "table"  # the same encoder reads the files

    args = ["--runtime", "onnx", "--keep", "label"]
    code, _, err = run(["score", folder, data, "--out", tmp_path / "onnx.parquet", *args], capsys)
    assert code == 0, err
    code, _, err = run(["score", folder, data, "--out", tmp_path / "torch.parquet", "--explain", "none"], capsys)
    assert code == 0, err
    a, b = pd.read_parquet(tmp_path / "onnx.parquet"), pd.read_parquet(tmp_path / "torch.parquet")
    assert len(a) == len(new) and list(a["label"]) == list(new["label"])
    np.testing.assert_allclose(a["score"], b["score"], rtol=PARITY_RTOL)
    assert (a["is_anomaly"] == b["is_anomaly"]).all() and a["is_anomaly"].any()
    np.testing.assert_array_equal(a["p_value"], b["p_value"])
    # Python: an OnnxModel scores frames as Model does
    rows = OnnxModel(folder).score(new)
    np.testing.assert_allclose(rows.score, Model.load(folder).score(new, explain="none").score, rtol=PARITY_RTOL)


def test_series_files_score_the_same_through_onnx(tmp_path: Path, capsys) -> None:
    t = pd.date_range("2026-01-01", periods=500, freq="min")
    vals = an.CNNForecaster._contract_data(np.random.default_rng(0), 500)
    frame = pd.DataFrame(vals, columns=["a", "b", "c"]).assign(time=t)
    det = an.CNNForecaster(**an.CNNForecaster.test_params, time_column="time", smoothing=5, random_state=0).fit(frame)
    Model(det, name="s").save(tmp_path / "s")
    code, _, err = run(["export", tmp_path / "s", "--format", "onnx", "--exporter", "torchscript"], capsys)
    assert code == 0, err
    new = frame.assign(time=t + pd.Timedelta("1D"))
    path = write(new, tmp_path / "new.csv")
    code, _, err = run(["score", tmp_path / "s", path, "--out", tmp_path / "o.csv", "--runtime", "onnx"], capsys)
    assert code == 0, err
    got = pd.read_csv(tmp_path / "o.csv")
    np.testing.assert_allclose(got["score"], det.anomaly_score(new), rtol=PARITY_RTOL)
    assert "time" in got.columns and (got["is_anomaly"] == det.is_anomaly(new)).all()


def test_bad_input_gives_one_line_errors(table_model, tmp_path: Path, capsys, monkeypatch) -> None:
    folder, _, data = table_model
    one_line_error(*run(["export", tmp_path / "nowhere", "--format", "onnx"], capsys)[::2], "nowhere")
    one_line_error(*run(["export", folder, "--format", "tflite"], capsys)[::2], "--format 'tflite'", "onnx")
    one_line_error(*run(["export", folder, "--out", tmp_path / "m.txt"], capsys)[::2], ".onnx")
    bad_runtime = ["score", folder, data, "--out", tmp_path / "o.csv", "--runtime", "tf"]
    one_line_error(*run(bad_runtime, capsys)[::2], "--runtime")

    fresh = tmp_path / "fresh"
    fit_file(write(mixed_frame(200), tmp_path / "t.csv"), out=fresh, params=FAST)
    code, _, err = run(["score", fresh, data, "--out", tmp_path / "o.csv", "--runtime", "onnx"], capsys)
    one_line_error(code, err, "no ONNX export", "anomalia export")

    pca = tmp_path / "pca"
    fit_file(tmp_path / "t.csv", out=pca, model="pca")
    one_line_error(*run(["export", pca, "--format", "onnx"], capsys)[::2], "'pca' cannot be exported", "NumPy")

    # an export left behind by an older fit of the folder is refused, not silently used
    export_onnx(fresh)
    meta = json.loads((fresh / "model.onnx.json").read_text())
    (fresh / "model.onnx.json").write_text(json.dumps({**meta, "model": {**meta["model"], "version": "old"}}))
    code, _, err = run(["score", fresh, data, "--out", tmp_path / "o.csv", "--runtime", "onnx"], capsys)
    one_line_error(code, err, "export again")

    # without the onnx extra: the install command, not a traceback
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, _, err = run(["score", folder, data, "--out", tmp_path / "o.csv", "--runtime", "onnx"], capsys)
    one_line_error(code, err, "pip install 'anomalia[onnx]'")


def _readme(section: str, lang: str) -> list[str]:
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index(section)
    return re.findall(rf"```{lang}\n(.*?)```", text[start : text.index("\n## ", start + 3)], flags=re.S)


def test_readme_export_examples_run_as_written(tmp_path: Path, monkeypatch, capsys) -> None:
    import shlex

    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.data.rename(columns=lambda c: c.replace(" ", "_")).assign(label=(data.target == 0).astype(int))
    df.to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    (bash,) = _readme("## Export to ONNX", "bash")
    for line in bash.splitlines():
        cmd = shlex.split(line.split("#")[0])
        assert cmd[0] == ".venv/bin/anomalia"
        assert run(cmd[1:], capsys)[0] == 0, line
    assert (tmp_path / "model" / "model.onnx").is_file() and len(pd.read_csv(tmp_path / "scores.csv")) == len(df)
    (code,) = _readme("## Export to ONNX", "python")
    exec(compile(code, "README.md (ONNX)", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert float(printed[0]) <= PARITY_RTOL and printed[1:] == ["True", "True"]
