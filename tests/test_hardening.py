"""Hardening: every path a user takes, with the bad input a new user tried (one test per point of the
hardening issue; the README's "Bad input tried" table lists the kinds)."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import anomalia as an
from anomalia.cli import main
from anomalia.workflows.series import fit_series_file

SERIES_FAST = ["--set", "epochs=3", "--set", "window=8"]


def run(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the command line (tables 200 characters wide, so that no cell wraps); exit code, stdout, stderr."""
    cli_app = importlib.import_module("anomalia.cli.app")

    width = cli_app.console.width
    cli_app.console.width = 200
    try:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
    finally:
        cli_app.console.width = width
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def labelled_series(n: int = 600, spikes: tuple[int, ...] = (150, 300, 520)) -> pd.DataFrame:
    """A two-channel series with labelled spikes (three steps each), in training and in the held-out tail."""
    rng = np.random.default_rng(0)
    t = np.arange(n)
    df = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min").astype(str),
            "cpu": np.sin(t / 5) + 0.05 * rng.normal(size=n),
            "mem": np.cos(t / 7) + 0.05 * rng.normal(size=n),
            "label": 0,
        }
    )
    for s in spikes:
        df.loc[s : s + 2, "cpu"] += 6.0
        df.loc[s : s + 2, "label"] = 1
    return df


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("series") / "labelled.csv"
    labelled_series().to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- 1. labelled thresholds of series and images
def test_1_series_fit_with_a_labelled_threshold_fits_it_and_flags(series_csv: Path, tmp_path: Path, capsys) -> None:
    model = tmp_path / "m"
    args = ["fit", series_csv, "--time-column", "ts", "--label-column", "label", "--threshold", "best-f1"]
    code, out, err = run([*args, *SERIES_FAST, "-o", model], capsys)
    assert code == 0, err
    assert an.read_manifest(model)["detector"]["threshold"] is not None
    assert "on the labelled validation set" in out
    code, out, err = run(["score", model, series_csv, "-o", tmp_path / "s.csv", "--explain", "none"], capsys)
    assert code == 0, err
    scored = pd.read_csv(tmp_path / "s.csv")
    labels = pd.read_csv(series_csv)["label"].to_numpy()
    assert scored["is_anomaly"].sum() > 0 and scored["is_anomaly"][labels == 1].mean() > 0.3


def test_1_series_labelled_threshold_without_labels_is_refused(series_csv: Path, tmp_path: Path, capsys) -> None:
    code, _out, err = run(
        ["fit", series_csv, "--time-column", "ts", "--threshold", "best-f1", *SERIES_FAST, "-o", tmp_path / "m"],
        capsys,
    )
    assert code == 2 and "--label-column" in err and not (tmp_path / "m").exists()


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def test_1_image_fit_with_a_labelled_threshold_fits_it_on_the_test_defects(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "parts"
    for i in range(30):
        _png(root / "train" / "good" / f"{i:03d}.png", 120 + rng.normal(0, 4, (16, 16)))
    for i in range(3):
        _png(root / "test" / "good" / f"{i:03d}.png", 120 + rng.normal(0, 4, (16, 16)))
        bad = 120 + rng.normal(0, 4, (16, 16))
        bad[4:10, 4:10] = 250
        _png(root / "test" / "scratch" / f"{i:03d}.png", bad)
    model = tmp_path / "m"
    fast = ["--set", "channels=4,8", "--set", "latent=4", "--set", "epochs=2"]
    code, out, err = run(["fit", root, "--threshold", "best-f1", *fast, "-o", model], capsys)
    assert code == 0, err
    assert an.read_manifest(model)["detector"]["threshold"] is not None
    assert "3 test/<defect> images" in out
    code, out, err = run(["score", model, root, "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "s.csv")["is_anomaly"].sum() > 0


# ---------------------------------------------------------------- 2. labelled series steps are not trained on
def test_2_labelled_series_windows_are_left_out_of_training_and_calibration(series_csv: Path) -> None:
    frame = labelled_series()
    labels = frame.pop("label").to_numpy()
    det = an.CNNForecaster(window=8, epochs=2, time_column="ts", random_state=0)
    det.fit(frame, labels=labels)
    assert det.n_excluded_steps_ == 9
    span = det.span
    # every labelled step kills the windows that hold it: (3 + span - 1) per spike, the one in the held-out tail too
    assert det.n_excluded_windows_ == 3 * (3 + span - 1)
    n_cal_steps = frame.shape[0] - det.n_train_rows_
    assert det.calibration_scores_.size == n_cal_steps - (3 + span - 1)
    plain = an.CNNForecaster(window=8, epochs=2, time_column="ts", random_state=0).fit(frame)
    # the spike in the held-out tail was calibrated on without labels: the calibration's top scores are spikes
    assert plain.calibration_scores_.max() > 3 * det.calibration_scores_.max()


def test_2_series_fit_summary_reports_the_excluded_steps(series_csv: Path, tmp_path: Path, capsys) -> None:
    args = ["fit", series_csv, "--time-column", "ts", "--label-column", "label", *SERIES_FAST, "-o", tmp_path / "m"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "labelled anomaly steps (not trained on)" in out and "9 steps" in out
    res = fit_series_file(
        series_csv, out=tmp_path / "m2", time_column="ts", label_column="label", params={"epochs": 2, "window": 8}
    )
    assert res.n_excluded_anomalies == 9 and res.n_excluded_windows > 0


# ---------------------------------------------------------------- 4. a precision target that leaves recall tiny
def table_with_anomalies(path: Path, n: int = 1500, hard: int = 97, easy: int = 3, label: str = "label") -> Path:
    """Normal Gaussian rows, ``easy`` far-away anomalies and ``hard`` ones that look almost normal."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(n, 4))
    far = rng.normal(size=(easy, 4)) + 12.0
    near = rng.normal(size=(hard, 4)) * 1.05
    X = np.vstack([normal, far, near])
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df[label] = np.r_[np.zeros(n), np.ones(easy + hard)].astype(int)
    df.to_csv(path, index=False)
    return path


def test_4_fit_summary_shows_validation_precision_recall_and_warns_on_tiny_recall(
    tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    data = table_with_anomalies(tmp_path / "t.csv")
    caplog.set_level(logging.WARNING)
    args = ["fit", data, "--label-column", "label", "--threshold", "precision:0.9", "--model", "pca"]
    code, out, err = run([*args, "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert "on the labelled validation set" in out and "recall" in out
    assert "recall" in caplog.text and "of the labelled anomalies" in caplog.text


def test_4_no_warning_when_recall_is_fine(tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture) -> None:
    data = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=30)
    caplog.set_level(logging.WARNING)
    args = ["fit", data, "--label-column", "label", "--threshold", "precision:0.9", "--model", "pca"]
    code, _out, err = run([*args, "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert "of the labelled anomalies" not in caplog.text


# ---------------------------------------------------------------- 5. a label-like column used as a feature
@pytest.mark.parametrize("name", ["label", "is_anomaly", "Anomaly", "target"])
def test_5_a_label_like_feature_is_warned_about_at_fit_and_evaluate(
    name: str, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    data = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=20, label=name)
    caplog.set_level(logging.WARNING)
    code, _out, err = run(["fit", data, "--model", "pca", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert f"column {name!r} looks like a label" in caplog.text and "--label-column" in caplog.text
    caplog.clear()
    code, _out, err = run(["evaluate", tmp_path / "m", data, "--label-column", name], capsys)
    assert code == 0, err
    assert f"column {name!r} looks like a label" in caplog.text


def test_5_no_warning_when_the_label_column_is_given(tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture) -> None:
    data = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=20)
    caplog.set_level(logging.WARNING)
    code, _out, err = run(["fit", data, "--model", "pca", "--label-column", "label", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert "looks like a label" not in caplog.text


# ---------------------------------------------------------------- 15. the model remembers its label column
def test_15_evaluate_and_report_find_the_saved_label_column(tmp_path: Path, capsys) -> None:
    data = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=20)
    code, _, err = run(["fit", data, "--model", "pca", "--label-column", "label", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert an.read_manifest(tmp_path / "m")["label_column"] == "label"
    code, out, err = run(["evaluate", tmp_path / "m", data], capsys)
    assert code == 0, err
    assert "ROC-AUC" in out
    code, out, err = run(["report", tmp_path / "m", data, "-o", tmp_path / "r.html"], capsys)
    assert code == 0, err
    assert 'data-plot="roc"' in (tmp_path / "r.html").read_text()


def test_15_old_model_folders_without_a_label_column_still_load() -> None:
    folders = sorted((Path(__file__).parent / "data" / "v0.1").glob("*-model"))
    assert folders
    for folder in folders:
        assert an.Model.load(folder).label_column is None
