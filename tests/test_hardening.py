"""Hardening: every path a user takes, with the bad input a new user tried (one test per defect found; the
README's "Bad input tried" table lists the kinds)."""

from __future__ import annotations

import importlib
import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import anomalia as an
from anomalia.cli import main
from anomalia.workflows import fit_file
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


def _part_images(root: Path, n_train: int) -> None:
    """An MVTec-style folder: flat grey training parts, 3 good and 3 scratched test parts."""
    rng = np.random.default_rng(0)
    for i in range(n_train):
        _png(root / "train" / "good" / f"{i:03d}.png", 120 + rng.normal(0, 4, (16, 16)))
    for i in range(3):
        _png(root / "test" / "good" / f"{i:03d}.png", 120 + rng.normal(0, 4, (16, 16)))
        bad = 120 + rng.normal(0, 4, (16, 16))
        bad[4:10, 4:10] = 250
        _png(root / "test" / "scratch" / f"{i:03d}.png", bad)


def test_1_image_fit_with_a_labelled_threshold_fits_it_on_the_test_defects(tmp_path: Path, capsys) -> None:
    root = tmp_path / "parts"
    _part_images(root, 30)
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


# ------------------------------------------------ 3. explanations relative to the normal error
def shifted_with_category(tmp_path: Path, n: int = 1200, n_anom: int = 60) -> tuple[Path, Path]:
    """Correlated numbers and an unpredictable 5-value category; anomalies shift column ``b`` by +6 sigma."""
    rng = np.random.default_rng(1)

    def frame(m: int) -> pd.DataFrame:
        z = rng.normal(size=(m, 2))
        return pd.DataFrame(
            {
                "a": z[:, 0],
                "b": 0.7 * z[:, 0] + 0.7 * z[:, 1],
                "c": z[:, 1] + 0.1 * rng.normal(size=m),
                "d": rng.normal(size=m),
                "colour": rng.choice(["red", "green", "blue", "grey", "pink"], size=m),
            }
        )

    train = frame(n)
    test = frame(n_anom)
    test["b"] += 6.0 * train["b"].std()
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "test.csv"


def test_3_explanations_point_at_the_shifted_column_not_the_random_category(tmp_path: Path, capsys) -> None:
    train, test = shifted_with_category(tmp_path)
    fast = ["--set", "epochs=30", "--set", "hidden=8,2", "--seed", "0"]
    code, _, err = run(["fit", train, *fast, "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    code, _, err = run(["score", tmp_path / "m", test, "-o", tmp_path / "s.csv", "--explain", "all"], capsys)
    assert code == 0, err
    s = pd.read_csv(tmp_path / "s.csv")
    # plain shares of the score: 43 of 60 (colour 9); shares relative to each column's normal part: 54 of 60;
    # with the flagged rows re-ranked by which column's repair lowers the score most: 59 of 60
    assert (s["top_feature_1"] == "b").mean() >= 0.95
    assert (s["top_feature_1"] == "colour").mean() <= 0.05
    b = s[s["top_feature_1"] == "b"]
    raw = pd.read_csv(test).loc[b["row"], "b"].to_numpy()
    assert np.allclose(b["top_observed_1"], raw, rtol=1e-5)
    # the value the model expected is well below what it saw, and the saw value is outside the normal range
    assert (b["top_expected_1"] < b["top_observed_1"] - 2.0).mean() >= 0.9
    assert (b["top_observed_1"] > b["top_normal_high_1"]).mean() >= 0.9
    assert (b["top_normal_low_1"] < 0).all() and (b["top_normal_high_1"] > 0).all()


def test_3_contribution_records_carry_observed_expected_and_the_normal_range(tmp_path: Path) -> None:
    train, test = shifted_with_category(tmp_path)
    fitted = an.fit(pd.read_csv(train).drop(columns="colour"), model="autoencoder", epochs=20, random_state=0)
    rows = fitted.score(pd.read_csv(test).drop(columns="colour"), explain="all", top_k=2)
    rec = rows.to_records()[0]["contributions"][0]
    assert set(rec) >= {"feature", "share", "observed", "expected", "normal_low", "normal_high"}
    assert rec["feature"] == "b" and rec["observed"] > rec["normal_high"] > rec["normal_low"]


# ---------------------------------------------------------------- 16. mixed-type DataFrames in the Python API
def test_16_the_python_api_fits_and_scores_a_mixed_type_dataframe(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 10.0, n),
            "country": rng.choice(["de", "fr", "it"], n),
            "online": rng.random(n) < 0.5,
            "label": np.r_[np.zeros(n - 10), np.ones(10)].astype(int),
        }
    )
    df.loc[df["label"] == 1, "amount"] += 500
    with pytest.raises(an.InputTypeError, match=r"anomalia\.fit\(df"):
        an.AutoEncoder(epochs=1).fit(df.drop(columns="label"))
    model = an.fit(df, "autoencoder", label_column="label", epochs=5, hidden=(8, 4), random_state=0)
    assert model.label_column == "label" and "country=de" in model.feature_names
    rows = model.score(df.drop(columns="label"), explain="flagged")
    assert rows.score[df["label"] == 1].mean() > rows.score[df["label"] == 0].mean()
    model.save(tmp_path / "m")
    again = an.Model.load(tmp_path / "m")
    assert np.allclose(again.score(df, explain="none").score, rows.score)
    assert again.label_column == "label"


def test_3_reports_show_the_expected_value_and_normal_range(tmp_path: Path, capsys) -> None:
    frame = labelled_series(spikes=(520,))
    frame.iloc[:400].drop(columns="label").to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "test.csv", index=False)
    args = ["fit", tmp_path / "train.csv", "--time-column", "ts", *SERIES_FAST, "-o", tmp_path / "m"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    code, _, err = run(["score", tmp_path / "m", tmp_path / "test.csv", "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    s = pd.read_csv(tmp_path / "s.csv")
    top = s.loc[s["score"].idxmax()]
    assert top["top_feature_1"] == "cpu" and top["top_observed_1"] > top["top_normal_high_1"]
    assert abs(top["top_expected_1"] - top["top_observed_1"]) > 3.0
    code, _, err = run(
        ["report", tmp_path / "m", tmp_path / "test.csv", "--label-column", "label", "-o", tmp_path / "r.html"], capsys
    )
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    table = html[html.index('data-table="top-anomalies"') :]
    table = table[: table.index("</table>")]
    assert "(expected " in table and "; normal " in table
    assert "<th>time</th>" in table and "2024-01-01T08:40" in table  # step 520 of a 1-minute series, not a row number


# ---------------------------------------------------------------- 14. the command line starts without torch
HEAVY = ("torch", "pandas", "matplotlib", "sklearn", "scipy", "pyarrow")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["models"], ["info", "MODEL"], ["fit", "--help"]])
def test_14_help_version_models_and_info_import_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    import subprocess
    import sys

    model = Path(__file__).parent / "data" / "v0.1" / "table-model"
    argv = [str(model) if a == "MODEL" else a for a in args]
    code = (
        "import sys\n"
        "from anomalia.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout[-300:]
    if args == ["--version"]:
        assert out.stdout.startswith(f"anomalia {an.__version__}")


def test_14_the_static_detector_table_matches_the_registry() -> None:
    from anomalia.cli.catalog import DETECTORS, catalog_source, detector_catalog

    assert detector_catalog() == DETECTORS, "regenerate DETECTORS in anomalia/cli/catalog.py:\n" + catalog_source()
    assert all(not desc.endswith((",", ";", ":")) and desc.endswith(".") for _, _, desc, _ in DETECTORS.values())


def test_15_info_shows_the_network_layers_and_the_label_column(tmp_path: Path, capsys) -> None:
    data = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=20)
    args = ["fit", data, "--label-column", "label", "--set", "epochs=2", "-o", tmp_path / "m"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    code, out, err = run(["info", tmp_path / "m"], capsys)
    assert code == 0, err
    assert "network layers" in out and "4 → 64 → 32 → 64 → 4" in out and "label column" in out


# ---------------------------------------------------------------- 10. --set merges with the run file's set: block
def test_10_set_flags_merge_key_by_key_with_the_run_file(tmp_path: Path, capsys) -> None:
    data = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=20)
    run_file = tmp_path / "run.yaml"
    run_file.write_text(f"data: {data}\nmodel: autoencoder\nset:\n  hidden: [8, 4]\n  epochs: 2\ndrop: [label]\n")
    code, _, err = run(["fit", "--config", run_file, "--set", "lr=0.01", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    params = an.read_manifest(tmp_path / "m")["detector"]["params"]
    assert params["hidden"] == [8, 4] and params["epochs"] == 2 and params["lr"] == 0.01
    code, _, err = run(["fit", "--config", run_file, "--set", "epochs=1", "-o", tmp_path / "m2"], capsys)
    assert code == 0, err
    params = an.read_manifest(tmp_path / "m2")["detector"]["params"]
    assert params["hidden"] == [8, 4] and params["epochs"] == 1  # the flag wins for its own key only


# ---------------------------------------------------------------- 11. flags checked first, nothing lost silently
@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("small")
    data = table_with_anomalies(tmp / "t.csv", hard=0, easy=20)
    fit_file(data, out=tmp / "m", model="pca", label_column="label")
    return tmp / "m", data


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_11_keep_of_an_output_column_name_is_refused(small_model, tmp_path: Path, capsys) -> None:
    model, data = small_model
    df = pd.read_csv(data)
    df["score"] = 1.0
    df.to_csv(tmp_path / "with_score.csv", index=False)
    args = ["score", model, tmp_path / "with_score.csv", "-o", tmp_path / "s.csv", "--keep", "score"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "--keep 'score'", "output")


def test_11_max_categories_and_batch_rows_must_be_positive(small_model, tmp_path: Path, capsys) -> None:
    model, data = small_model
    code, _, err = run(["fit", data, "--max-categories", "0", "-o", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, "--max-categories", "at least 1")
    code, _, err = run(["score", model, data, "-o", tmp_path / "s.csv", "--batch-rows", "0"], capsys)
    assert_one_line_error(code, err, "--batch-rows", "at least 1")


def test_11_out_is_checked_before_training(small_model, tmp_path: Path, capsys, monkeypatch) -> None:
    _, data = small_model
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the detector was trained before --out was checked")

    monkeypatch.setattr(an.AutoEncoder, "fit", no_training)
    code, _, err = run(["fit", data, "-o", tmp_path / "busy"], capsys)
    assert_one_line_error(code, err, "busy", "other files")
    code, _, err = run(["score", *small_model, "-o", tmp_path / "s.xyz"], capsys)
    assert_one_line_error(code, err, "s.xyz", ".csv or .parquet")
    code, _, err = run(["score", *small_model, "-o", small_model[1]], capsys)  # the input itself
    assert_one_line_error(code, err, "is the file being scored")


def test_11_an_existing_output_is_replaced_with_a_warning(
    small_model, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    model, data = small_model
    (tmp_path / "s.csv").write_text("old")
    caplog.set_level(logging.WARNING)
    code, _, err = run(["score", model, data, "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    assert "replac" in caplog.text and "s.csv" in caplog.text


# ---------------------------------------------------------------- 6, 7. messy files: one clear line each
def _messy(tmp_path: Path) -> dict[str, Path]:
    rows = "".join(f"{i},{(i * 7) % 13}\n" for i in range(300))
    files = {
        "duplicate": ("a,b,a\n" + "".join(f"{i},{i % 5},{i % 3}\n" for i in range(100))).encode(),
        "latin1": ("name,x\n" + "".join(f"caf\xe9{i % 3},{i}\n" for i in range(100))).encode("latin-1"),
        "header_only": b"x,y,label\n",
        "bad_cell": ("x,y\n" + "".join(f"{i},{i * 2}\n" if i != 37 else f"{i},oops\n" for i in range(300))).encode(),
        "good": ("x,y\n" + rows).encode(),
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_bytes(content)
    return out


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("duplicate", ["'a'", "more than once"]),
        ("latin1", ["not UTF-8", "0xe9", "--encoding latin-1"]),
        ("header_only", ["header but no rows"]),
        ("bad_cell", ["'y'", "row 37", "'oops'"]),
    ],
)
def test_6_7_messy_files_get_one_line_naming_the_problem(kind: str, needles: list[str], tmp_path: Path, capsys) -> None:
    files = _messy(tmp_path)
    args = ["fit", files[kind], "--set", "epochs=1", "-o", tmp_path / "m"]
    if kind == "header_only":
        args += ["--label-column", "label"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, *needles)


def test_6_semicolon_files_with_decimal_commas_are_read_as_numbers(tmp_path: Path, capsys) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("x;y\n" + "".join(f"{i},5;{i * 2},25\n" for i in range(200)))
    code, _, err = run(["fit", path, "--set", "epochs=1", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert an.Model.load(tmp_path / "m").feature_names == ["x", "y"]


def test_6_encoding_reads_a_latin1_file_at_fit_score_and_evaluate(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    names = rng.choice(["café", "crème", "thé"], 300)
    text = "name,x,label\n" + "".join(f"{n},{v:.3f},0\n" for n, v in zip(names, rng.normal(size=300), strict=True))
    (tmp_path / "l1.csv").write_bytes(text.encode("latin-1"))
    fast = ["--set", "epochs=1", "--set", "hidden=4,2"]
    code, _, err = run(["fit", tmp_path / "l1.csv", "--label-column", "label", *fast, "-o", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, "not UTF-8", "--encoding latin-1")
    args = ["fit", tmp_path / "l1.csv", "--label-column", "label", "--encoding", "latin-1", *fast, "-o", tmp_path / "m"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert {"name=café", "name=crème", "name=thé"} <= set(an.Model.load(tmp_path / "m").feature_names)
    args = ["score", tmp_path / "m", tmp_path / "l1.csv", "-o", tmp_path / "s.csv", "--keep", "name"]
    code, _, err = run(args, capsys)
    assert code == 2 and "--encoding latin-1" in err
    code, _, err = run([*args, "--encoding", "latin-1"], capsys)
    assert code == 0, err
    assert set(pd.read_csv(tmp_path / "s.csv")["name"]) == {"café", "crème", "thé"}
    report = ["report", tmp_path / "m", tmp_path / "l1.csv", "--encoding", "latin-1", "-o", tmp_path / "r.html"]
    code, _, err = run(report, capsys)
    assert code == 0, err
    code, _, err = run([*args[:5], "--encoding", "nope"], capsys)
    assert_one_line_error(code, err, "--encoding 'nope'", "latin-1")


def test_6_delimiter_and_decimal_flags_read_what_detection_cannot(tmp_path: Path, capsys) -> None:
    # the first lines hold whole numbers only, so nothing shows that "2,5" further down is a decimal comma
    lines = [f"{i};{i * 2}" for i in range(40)] + [f"{i},5;{i * 2},25" for i in range(40, 300)]
    (tmp_path / "semi.csv").write_text("x;y\n" + "\n".join(lines) + "\n")
    fit = ["fit", tmp_path / "semi.csv", "--set", "epochs=1", "--set", "hidden=4,2", "-o", tmp_path / "m"]
    code, _, err = run(fit, capsys)
    assert code == 2 and "'x'" in err  # read as text with hundreds of values: refused
    code, _, err = run([*fit, "--delimiter", ";", "--decimal", ","], capsys)
    assert code == 0, err
    model = an.Model.load(tmp_path / "m")
    assert model.feature_names == ["x", "y"]
    code, _, err = run(["score", tmp_path / "m", tmp_path / "semi.csv", "-o", tmp_path / "s.csv", "--keep", "x",
                        "--decimal", ","], capsys)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "s.csv")["x"].iloc[-1] == 299.5
    (tmp_path / "pipe.csv").write_text("x|y\n" + "".join(f"{i}|{i * 2}.5\n" for i in range(200)))
    code, _, err = run(["fit", tmp_path / "pipe.csv", "--delimiter", "|", *fit[2:-2], "-o", tmp_path / "m2"], capsys)
    assert code == 0, err
    code, _, err = run([*fit, "--delimiter", ";;"], capsys)
    assert_one_line_error(code, err, "--delimiter takes one character")
    code, _, err = run([*fit, "--delimiter", ";", "--key", "x"], capsys)  # not read by per-key fits: refused
    assert_one_line_error(code, err, "--delimiter is read by a plain fit only")


def test_7_a_bad_cell_at_scoring_names_the_column_and_value(tmp_path: Path, capsys) -> None:
    files = _messy(tmp_path)
    code, _, err = run(["fit", files["good"], "--set", "epochs=1", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    code, _, err = run(["score", tmp_path / "m", files["bad_cell"], "-o", tmp_path / "s.csv"], capsys)
    assert_one_line_error(code, err, "'y'", "'oops'")


def test_16_the_readme_mixed_table_block_runs_as_written(tmp_path: Path, monkeypatch) -> None:
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text[text.index("<!-- python-mixed") :], re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md (mixed tables)", "exec"), {})
    assert an.Model.load(tmp_path / "mixed-model").feature_names[:2] == ["amount", "country=de"]


def test_15_evaluate_json_weights_mode_and_the_series_hold_out_share(small_model, tmp_path: Path, capsys) -> None:
    import json
    import os
    import stat

    model, data = small_model
    code, out, err = run(["evaluate", model, data, "--json"], capsys)
    assert code == 0, err
    parsed = json.loads(out)
    assert parsed["metrics"]["roc_auc"] > 0.5 and parsed["operating_points"][0]["name"].startswith("current")
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in model.iterdir()}
    assert modes["weights.safetensors"] == modes["anomalia.json"], modes
    frame = labelled_series(n=12000, spikes=())
    frame.drop(columns="label").to_csv(tmp_path / "long.csv", index=False)
    args = ["fit", tmp_path / "long.csv", "--time-column", "ts", "--set", "epochs=1", "--set", "window=8"]
    code, out, err = run([*args, "--set", "train_stride=8", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert "% of the series; 20 %, at most about 2,000)" in out and "(16.6% of the series" in out


# ---------------------------------------------------------------- 9. series and image errors give flags, name the file
def test_9_series_and_image_errors_give_the_flag_and_the_file(tmp_path: Path, capsys) -> None:
    frame = labelled_series(spikes=()).drop(columns="label")
    gappy = frame.drop(index=range(100, 110))
    gappy.to_csv(tmp_path / "gappy.csv", index=False)
    series_fit = ["fit", "--time-column", "ts", *SERIES_FAST, "-o", tmp_path / "m"]
    code, _, err = run([*series_fit, tmp_path / "gappy.csv"], capsys)
    assert_one_line_error(code, err, "gappy.csv", "--set resample=")
    assert "resample='" not in err
    shuffled = frame.iloc[[*range(50), 60, *range(50, 60), *range(61, 600)]]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    code, _, err = run([*series_fit, tmp_path / "shuffled.csv"], capsys)
    assert_one_line_error(code, err, "shuffled.csv", "sort the file by its time column")
    assert "sort_index" not in err
    root = tmp_path / "parts"
    rng = np.random.default_rng(0)
    for i in range(6):
        _png(root / "train" / "good" / f"{i}.png", rng.integers(0, 255, (16, 16) if i else (20, 16)))
    code, _, err = run(["fit", root, "-o", tmp_path / "mi"], capsys)
    assert_one_line_error(code, err, "--image-size HEIGHTxWIDTH")
    assert "size=(" not in err


# ---------------------------------------------------------------- 12. skewed scores: readable axis, flagged tail
def test_12_skewed_scores_get_a_log_axis_and_the_flagged_tail_is_counted() -> None:
    from anomalia.report import figures

    rng = np.random.default_rng(0)
    scores = np.r_[np.zeros(50), rng.lognormal(0.0, 2.0, 5000)]  # warm-up zeros and a long tail
    fig = figures.score_distribution(scores, None, threshold=float(np.quantile(scores, 0.99)))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    flagged = int((scores > np.quantile(scores, 0.99)).sum())
    assert f"flagged: {flagged:,} (1.0%)" in legend and any("50 scores ≤ 0" in t for t in legend)


# ---------------------------------------------------------------- 8. how a series' time column is read
def _hourly(n: int = 400, start: str = "2024-01-01") -> tuple[pd.DatetimeIndex, np.ndarray]:
    t = np.arange(n)
    return pd.date_range(start, periods=n, freq="1h"), np.sin(t / 5) + 0.05 * np.random.default_rng(0).normal(size=n)


def test_8_unix_seconds_are_read_as_seconds_and_the_fit_says_so(tmp_path: Path, capsys) -> None:
    stamps, cpu = _hourly()
    unix = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")
    pd.DataFrame({"ts": unix, "cpu": cpu}).to_csv(tmp_path / "epoch.csv", index=False)
    seconds = pd.read_csv(tmp_path / "epoch.csv")["ts"]
    assert 1e9 < seconds.iloc[0] < 2e9  # Unix seconds (pandas read them as nanoseconds: a step of 3,600 ns)
    args = ["fit", tmp_path / "epoch.csv", "--time-column", "ts", *SERIES_FAST, "-o", tmp_path / "m"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "Unix seconds (inferred from their magnitude" in out and "2024-01-01 00:00:00 to" in out
    det = an.Model.load(tmp_path / "m").detector
    assert det.step_ == pd.Timedelta("1h") and det.time_parsing_.time_unit == "s"
    # milliseconds said with --time-unit are read as such, and the model keeps the unit for scoring
    pd.DataFrame({"ts": seconds * 1000, "cpu": cpu}).to_csv(tmp_path / "ms.csv", index=False)
    args = ["fit", tmp_path / "ms.csv", "--time-column", "ts", "--time-unit", "ms", *SERIES_FAST, "-o", tmp_path / "m2"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "Unix milliseconds" in out and an.Model.load(tmp_path / "m2").detector.step_ == pd.Timedelta("1h")
    code, _, err = run(["score", tmp_path / "m2", tmp_path / "ms.csv", "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    code, _, err = run(["score", tmp_path / "m", tmp_path / "ms.csv", "-o", tmp_path / "s.csv"], capsys)
    assert_one_line_error(code, err, "ms.csv", "out of range as Unix seconds, the unit the model was fitted with")


def test_8_day_first_dates_are_detected_kept_in_the_model_and_used_at_scoring(tmp_path: Path, capsys) -> None:
    stamps, cpu = _hourly(n=500)  # 1 January to 21 January: days above 12 in the first place
    pd.DataFrame({"ts": stamps.strftime("%d/%m/%Y %H:%M"), "cpu": cpu}).to_csv(tmp_path / "dmy.csv", index=False)
    args = ["fit", tmp_path / "dmy.csv", "--time-column", "ts", *SERIES_FAST, "-o", tmp_path / "m"]
    code, out, err = run(args, capsys)
    assert code == 0, err  # before: "time data '13/01/2024 00:00' doesn't match format '%m/%d/%Y %H:%M'"
    assert "text read day-first" in out and "'13/01/2024 00:00' in row 288" in out
    assert an.Model.load(tmp_path / "m").detector.step_ == pd.Timedelta("1h")
    # a file of the first days only is ambiguous on its own; the model reads it day-first, as at fit
    short = pd.DataFrame({"ts": stamps[:200].strftime("%d/%m/%Y %H:%M"), "cpu": cpu[:200]})
    short.to_csv(tmp_path / "first-days.csv", index=False)
    code, _, err = run(["score", tmp_path / "m", tmp_path / "first-days.csv", "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    det = an.Model.load(tmp_path / "m").detector
    assert det.timestamps(short)[24] == pd.Timestamp("2024-01-02")


def test_8_ambiguous_dates_are_warned_about_and_dayfirst_reads_them(
    tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    stamps, cpu = _hourly(n=260)  # 1 to 11 January: no number above 12 anywhere
    pd.DataFrame({"ts": stamps.strftime("%d/%m/%Y %H:%M"), "cpu": cpu}).to_csv(tmp_path / "amb.csv", index=False)
    caplog.set_level(logging.WARNING)
    fit_args = ["fit", tmp_path / "amb.csv", "--time-column", "ts", *SERIES_FAST]
    code, _, err = run([*fit_args, "-o", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, "irregular timestamps")  # month-first, 2 January is 1 February
    assert "ambiguous" in caplog.text and "--dayfirst" in caplog.text
    code, out, err = run([*fit_args, "--dayfirst", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    assert "format %d/%m/%Y %H:%M" in out and an.Model.load(tmp_path / "m").detector.step_ == pd.Timedelta("1h")


def test_8_an_unreadable_timestamp_names_the_column_value_and_flag(tmp_path: Path, capsys) -> None:
    stamps, cpu = _hourly(n=300)
    text = list(stamps.strftime("%d.%m.%Y %H:%M"))
    text[77] = "31.02.2024 10:00"
    pd.DataFrame({"ts": text, "cpu": cpu}).to_csv(tmp_path / "bad.csv", index=False)
    args = ["fit", tmp_path / "bad.csv", "--time-column", "ts", "--date-format", "%d.%m.%Y %H:%M", *SERIES_FAST]
    code, _, err = run([*args, "-o", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, "column 'ts'", "bad.csv", "'31.02.2024 10:00' (row 77)", "--date-format")
    code, _, err = run([*args[:4], "--time-unit", "s", *SERIES_FAST, "-o", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, "--time-unit", "holds text", "--date-format")


# ---------------------------------------------------------------- 13. reports: image top table, code, captions, ticks
def test_13_the_image_report_lists_its_top_anomalies_with_p_values_and_heat_map_links(tmp_path: Path, capsys) -> None:
    root = tmp_path / "parts"
    _part_images(root, 20)
    fast = ["--set", "channels=4,8", "--set", "latent=4", "--set", "epochs=2"]
    code, _, err = run(["fit", root, *fast, "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    code, _, err = run(["report", tmp_path / "m", root, "-o", tmp_path / "r.html"], capsys)
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    table = html[html.index('data-table="top-anomalies"') :]
    table = table[: table.index("</table>")]
    body = table[table.index("<tbody>") :]
    assert body.count("<tr>") == 6  # before: an empty table (the rows of table files only)
    assert "<th>p-value</th>" in table and "scratch" in body and ".png</td>" in body
    assert '<a href="#image-0">' in body and 'data-plot="image-0"' in html


def test_13_report_text_renders_code_and_unlabelled_reports_say_no_labels(small_model, tmp_path: Path, capsys) -> None:
    model, data = small_model
    code, _, err = run(["report", model, data, "--label-column", "label", "-o", tmp_path / "r.html"], capsys)
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert "`" not in html and "<code>--threshold precision:0.9</code>" in html  # before: literal backticks
    df = pd.read_csv(data).drop(columns="label")
    df.to_csv(tmp_path / "unlabelled.csv", index=False)
    other = an.fit(df, "pca")
    other.save(tmp_path / "m2")
    code, _, err = run(["report", tmp_path / "m2", tmp_path / "unlabelled.csv", "-o", tmp_path / "u.html"], capsys)
    assert code == 0, err
    html = (tmp_path / "u.html").read_text()
    figure = html[html.index('data-plot="score-distribution"') :]
    caption = figure[figure.index("<figcaption>") : figure.index("</figcaption>")]
    assert "anomalous" not in caption and "held-out normal" in caption  # before: "normal vs anomalous rows"


def _tick_labels_overlap(fig: object, ax: object) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    return any(a.x1 > b.x0 for a, b in itertools.pairwise(boxes))


def test_13_series_and_training_plots_have_readable_ticks() -> None:
    from anomalia.report import figures
    from anomalia.report.series import series_figure
    from anomalia.results import SeriesView

    n = 50_000  # 35 days of minutes
    view = SeriesView(
        time=pd.date_range("2024-01-01 00:00", periods=n, freq="1min").to_numpy(),
        values=np.random.default_rng(0).normal(size=(n, 2)),
        channels=["cpu", "mem"],
        scores=np.abs(np.random.default_rng(1).normal(size=n)),
        threshold=2.5,
        flags=np.zeros(n, bool),
        labels=None,
        shares=np.full((n, 2), 0.5),
        warmup=8,
    )
    fig = series_figure(view)
    ax = fig.axes[-1]
    assert not _tick_labels_overlap(fig, ax)  # before: '2024-01-01', '2024-01-05', ... run into each other
    stepped = series_figure(SeriesView(**{**view.__dict__, "time": None}))
    assert all(float(t).is_integer() for t in stepped.axes[-1].get_xticks())
    loss = figures.training_loss([{"train_loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.5], "best_epoch": 3}])
    assert all(float(t).is_integer() for t in loss.axes[0].get_xticks())  # before: 1.00, 1.25, 1.50, ...


# ---------------------------------------------------------------- 15. booleans: one spelling in every output
def test_15_booleans_are_written_the_same_for_tables_and_series_in_csv_and_json(
    series_csv: Path, tmp_path: Path, capsys
) -> None:
    import json

    frame = pd.read_csv(series_csv)
    frame["maintenance"] = np.arange(len(frame)) % 7 == 0  # a boolean column kept along
    frame.drop(columns="label").to_csv(tmp_path / "series.csv", index=False)
    table = table_with_anomalies(tmp_path / "t.csv", hard=0, easy=20)
    t = pd.read_csv(table)
    t["maintenance"] = np.arange(len(t)) % 7 == 0
    t.to_csv(table, index=False)
    fit_series = ["fit", tmp_path / "series.csv", "--time-column", "ts", "--drop", "maintenance", *SERIES_FAST]
    code, _, err = run([*fit_series, "-o", tmp_path / "ms"], capsys)
    assert code == 0, err
    fit_table = ["fit", table, "--model", "pca", "--label-column", "label", "--drop", "maintenance"]
    code, _, err = run([*fit_table, "-o", tmp_path / "mt"], capsys)
    assert code == 0, err
    spelled = {}
    for kind, model, data in (("series", "ms", tmp_path / "series.csv"), ("table", "mt", table)):
        out = tmp_path / f"scored-{kind}.csv"
        code, _, err = run(["score", tmp_path / model, data, "-o", out, "--keep", "maintenance"], capsys)
        assert code == 0, err
        raw = pd.read_csv(out, dtype=str)
        spelled[kind] = set(raw["is_anomaly"]) | set(raw["maintenance"])
        rows = an.Model.load(tmp_path / model).score(pd.read_csv(data).drop(columns=["maintenance"]), explain="none")
        text = json.dumps(rows.to_records()[:3])
        assert '"is_anomaly": false' in text and "False" not in text, text[:200]
    assert spelled["series"] == spelled["table"] == {"true", "false"}, spelled
