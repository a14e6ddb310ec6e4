"""The command line end to end on small files: every command, the run file, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import anomalia as an
from anomalia.cli import main

from tabular_files import FAST, mixed_frame, write

SET = [x for kv in FAST for x in ("--set", kv)]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    df = mixed_frame(300)
    return tmp, df, write(df, tmp / "train.csv"), write(df, tmp / "test.parquet")


@pytest.fixture(scope="module")
def model(files):
    tmp, _, train, _ = files
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(train), "--label-column", "label", "--out", str(tmp / "model"), *SET])
    assert exc.value.code in (0, None)
    return tmp / "model"


def test_fit_prints_a_summary(files, capsys):
    tmp, _, train, _ = files
    code, out, err = run(["fit", train, "--label-column", "label", "--out", tmp / "m1", *SET], capsys)
    assert code == 0, err
    assert "Fitted model" in out and "labelled anomalies" in out and "false-alarm:0.01" in out
    assert an.read_manifest(tmp / "m1")["preprocess"]["kind"] == "table"  # the encoding is in the one manifest


@pytest.mark.parametrize("out_name", ["scores.csv", "scores.parquet"])
def test_score_writes_one_row_per_input_row(files, model, capsys, out_name):
    tmp, df, _, test = files
    code, out, err = run(["score", model, test, "--out", tmp / out_name, "--keep", "label"], capsys)
    assert code == 0, err
    assert "Scored" in out and "rows/s" in out
    got = pd.read_csv(tmp / out_name) if out_name.endswith(".csv") else pd.read_parquet(tmp / out_name)
    assert len(got) == len(df)
    assert {"row", "label", "score", "p_value", "is_anomaly", "top_feature_1", "top_feature_3"} <= set(got.columns)


def test_score_threads_option(files, model, capsys):
    tmp, df, _, test = files
    code, _, err = run(["score", model, test, "--out", tmp / "t1.parquet", "--threads", "1"], capsys)
    assert code == 0, err
    assert len(pd.read_parquet(tmp / "t1.parquet")) == len(df)
    code, _, err = run(["score", model, test, "--out", tmp / "t0.parquet", "--threads", "0"], capsys)
    assert code == 2 and "threads must be at least 1" in err and "Traceback" not in err


def test_evaluate_prints_metrics_and_writes_the_report(files, model, capsys):
    tmp, _, _, test = files
    code, out, err = run(["evaluate", model, test, "--label-column", "label", "--report", tmp / "r.html"], capsys)
    assert code == 0, err
    assert "ROC-AUC" in out and "Operating points" in out and "best F1" in out
    html = (tmp / "r.html").read_text()
    assert 'data-plot="roc"' in html and 'data-plot="training-loss"' in html


def test_report_without_labels(files, model, capsys):
    tmp, df, _, _ = files
    unlabelled = write(df.drop(columns="label"), tmp / "unlabelled.csv")
    code, _, err = run(["report", model, unlabelled, "--out", tmp / "plain.html"], capsys)
    assert code == 0, err
    html = (tmp / "plain.html").read_text()
    assert 'data-plot="score-distribution"' in html and 'data-plot="roc"' not in html
    assert "need labels" in html or "needs labels" in html


def test_models_and_info(model, capsys):
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "autoencoder" in out and "isolation-forest" in out
    code, out, _ = run(["info", model], capsys)
    assert code == 0
    assert "autoencoder" in out and "false-alarm:0.01" in out and "color (3)" in out and "training rows" in out


def test_run_file_gives_the_same_model_as_flags(files, capsys):
    tmp, _, train, _ = files
    cfg = tmp / "run.yaml"
    cfg.write_text(
        f"data: {train}\nmodel: autoencoder\nlabel-column: label\nout: {tmp / 'from_yaml'}\n"
        "set:\n  epochs: 3\n  hidden: [8, 4]\n  batch_size: 64\n  lr: 1e-3\n"
    )
    code, _, err = run(["fit", "--config", cfg], capsys)
    assert code == 0, err
    code, _, err = run(["fit", train, "--label-column", "label", "--out", tmp / "from_flags", *SET], capsys)
    assert code == 0, err
    s1 = tmp / "s1.csv"
    s2 = tmp / "s2.csv"
    run(["score", tmp / "from_yaml", train, "--out", s1], capsys)
    run(["score", tmp / "from_flags", train, "--out", s2], capsys)
    pd.testing.assert_series_equal(pd.read_csv(s1)["score"], pd.read_csv(s2)["score"])
    cfg.write_text("data: x.csv\nepoch: 3\n")
    code, _, err = run(["fit", "--config", cfg], capsys)
    assert_one_line_error(code, err, "unknown key 'epoch'")


def test_impute_median_is_saved_with_the_model(tmp_path, capsys):
    df = mixed_frame(120).drop(columns="label")
    df.loc[5, "a"] = None
    data = write(df, tmp_path / "holes.csv")
    code, _, err = run(["fit", data, "--out", tmp_path / "m", *SET], capsys)
    assert_one_line_error(code, err, "'a' has 1 missing value", "--impute median")
    code, _, err = run(["fit", data, "--impute", "median", "--out", tmp_path / "m", *SET], capsys)
    assert code == 0, err
    code, out, err = run(["score", tmp_path / "m", data, "--out", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    code, out, _ = run(["info", tmp_path / "m"], capsys)
    assert "median" in out


def test_bad_inputs_give_one_line_and_exit_code_2(files, model, tmp_path, capsys):
    _, df, train, test = files
    cases = [
        (["score", model, tmp_path / "missing.csv", "--out", tmp_path / "o.csv"], ["missing.csv", "no such file"]),
        (["fit", train, "--label-column", "nope", "--out", tmp_path / "m"], ["no column(s) ['nope']"]),
        (["score", model, write(df.drop(columns="b"), tmp_path / "nob.csv"), "--out", tmp_path / "o.csv"], ["'b'"]),
        (["score", tmp_path / "no_model", test, "--out", tmp_path / "o.csv"], ["no saved model"]),
        (["fit", train, "--model", "nonexistent", "--out", tmp_path / "m"], ["unknown detector 'nonexistent'"]),
        (["fit", train, "--threshold", "best-f1", "--out", tmp_path / "m"], ["--label-column"]),
        (["score", model, test, "--out", tmp_path / "o.xlsx"], ["unknown file type"]),
        (["evaluate", model, test, "--label-column", "color"], ["'color' holds"]),
    ]
    text_a = df.copy()
    text_a["a"] = "x"
    cases.append((["score", model, write(text_a, tmp_path / "t.parquet"), "--out", tmp_path / "o.csv"], ["text"]))
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not a parquet file at all")
    cases.append((["score", model, junk, "--out", tmp_path / "o.csv"], ["could not be read"]))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,b\n1,2,3,4\n\x00\x01")
    cases.append((["fit", binary, "--out", tmp_path / "m"], ["could not be read"]))
    for args, needles in cases:
        code, _, err = run(args, capsys)
        assert_one_line_error(code, err, *needles)


def test_subprocess_error_has_no_traceback(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    exe = Path(sys.executable).with_name("anomalia")
    proc = subprocess.run(
        [str(exe), "score", str(tmp_path / "m"), str(tmp_path / "d.csv"), "--out", str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error:"), proc.stderr


def test_run_file_keys_are_the_parameters_of_the_one_fit() -> None:
    import inspect

    from anomalia.cli.app import FIT_KEYS
    from anomalia.workflows import fit

    params = set(inspect.signature(fit).parameters) - {"params", "callback"}
    assert set(FIT_KEYS) == params | {"set"}  # `set:` is --set, the detector arguments (fit's params)
