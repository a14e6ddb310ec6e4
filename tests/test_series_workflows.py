"""Series files end to end: `anomalia fit --time-column`, score, evaluate and the report's series view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalia.cli import main
from anomalia.workflows.series import evaluate_series_file, fit_series_file, score_series


def series_frame(n: int = 500, spike: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    df = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min").astype(str),
            "cpu": np.sin(t / 5) + 0.05 * rng.normal(size=n),
            "mem": np.cos(t / 7) + 0.05 * rng.normal(size=n),
        }
    )
    df["label"] = 0
    if spike is not None:
        df.loc[spike, "cpu"] += 4.0
        df.loc[spike : spike + 2, "label"] = 1
    return df


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("series")
    series_frame().drop(columns="label").to_csv(tmp / "train.csv", index=False)
    series_frame(spike=400).to_parquet(tmp / "test.parquet", index=False)
    return tmp


def run(args: list[object], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_cli_fit_score_evaluate_report_a_series_file(files, capsys) -> None:
    code, out, err = run(
        [
            "fit",
            files / "train.csv",
            "--time-column",
            "ts",
            "--set",
            "epochs=3",
            "--set",
            "window=8",
            "-o",
            files / "m",
        ],
        capsys,
    )
    assert code == 0, err
    assert "Fitted series model" in out and "cnn-forecaster" in out
    code, out, err = run(
        ["score", files / "m", files / "test.parquet", "-o", files / "s.csv", "--keep", "label"], capsys
    )
    assert code == 0, err
    scored = pd.read_csv(files / "s.csv")
    assert len(scored) == 500 and {"ts", "label", "score", "p_value", "is_anomaly", "top_feature_1"} <= set(scored)
    assert scored["score"].idxmax() == 400 and scored.loc[400, "top_feature_1"] == "cpu"
    code, out, err = run(
        ["evaluate", files / "m", files / "test.parquet", "--label-column", "label", "--report", files / "r.html"],
        capsys,
    )
    assert code == 0, err
    assert "point-adjusted (optimistic)" in out and "event-wise" in out
    html = (files / "r.html").read_text()
    assert 'data-plot="series-view"' in html and 'data-table="series-metrics"' in html and "optimistic" in html


def test_cli_errors_on_a_missing_time_column(files, capsys) -> None:
    code, _, err = run(["fit", files / "train.csv", "--time-column", "when", "-o", files / "bad"], capsys)
    assert code == 2 and "when" in err and "Traceback" not in err


def test_workflow_keeps_options_with_the_model(files) -> None:
    res = fit_series_file(
        files / "train.csv",
        out=files / "m2",
        time_column="ts",
        params={"epochs": 2, "window": 8, "fill": "interpolate"},
    )
    assert res.step == str(pd.Timedelta("1min")) and res.n_features == 2
    gappy = series_frame(spike=400)
    gappy.loc[10, "mem"] = np.nan  # filled as the saved option says
    gappy.to_csv(files / "gappy.csv", index=False)
    s = score_series(files / "m2", files / "gappy.csv")
    assert s.score.shape == (500,) and np.isfinite(s.score).all()
    ev = evaluate_series_file(files / "m2", files / "test.parquet", label_column="label")
    assert ev.metrics["event_events"] == 1 and "pa_f1" in ev.metrics
    assert ev.top_rows[0].row == 400


def test_readme_time_series_example_runs_as_written(capsys) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("### Time series")
    block = re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)[0]
    exec(compile(block, "README.md (time series)", "exec"), {})
    assert capsys.readouterr().out.startswith("200 [1. 0.]")
