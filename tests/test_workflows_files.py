"""anomalia.workflows over files: fit -> saved folder -> streamed scores -> evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalia import BundleError, InputError, ParameterError, SchemaError, read_manifest
from anomalia.model import load_model
from anomalia.workflows import evaluate_file, fit_file, parse_params, score_file

from tabular_files import FAST, mixed_frame, write


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wf")
    df = mixed_frame(400)
    data = write(df, tmp / "train.csv")
    result = fit_file(data, out=tmp / "model", params=FAST, label_column="label")
    return tmp, df, result


def test_fit_keeps_labelled_anomalies_out_and_saves_the_encoding(fitted):
    tmp, _, result = fitted
    assert result.n_excluded_anomalies == 40
    assert result.n_train + result.n_calibration == 360
    assert result.n_features == 7 and result.n_input_columns == 5
    assert result.epochs == 3 and len(result.history) == 1
    state = read_manifest(tmp / "model")["preprocess"]  # one manifest: the encoding is inside it
    assert state["kind"] == "table"
    assert [c["name"] for c in state["encoder"]["columns"]] == ["a", "b", "color", "ok", "c"]
    assert sorted(p.name for p in (tmp / "model").iterdir()) == ["anomalia.json", "weights.safetensors"]
    model = load_model(tmp / "model")
    assert model.feature_names == result.model.feature_names


@pytest.mark.parametrize("out_name", ["scores.parquet", "scores.csv"])
def test_score_file_matches_in_memory_scores(fitted, out_name):
    tmp, df, _ = fitted
    data = write(df, tmp / "test.parquet")
    res = score_file(tmp / "model", data, tmp / out_name, batch_rows=64, keep=["label"])
    out = pd.read_parquet(tmp / out_name) if out_name.endswith("parquet") else pd.read_csv(tmp / out_name)
    model = load_model(tmp / "model")
    expected = model.detector.anomaly_score(model.encoder.transform(df))
    assert res.n_rows == len(df) == len(out)
    np.testing.assert_array_equal(out["row"], np.arange(len(df)))
    np.testing.assert_array_equal(out["label"], df["label"])
    np.testing.assert_allclose(out["score"], expected, rtol=1e-6)
    assert (out["is_anomaly"] == (expected > model.detector.threshold_.threshold_)).all()
    assert res.n_flagged == int(out["is_anomaly"].sum())
    flagged = out[out["is_anomaly"]]
    assert flagged["top_feature_1"].notna().all()
    assert set(flagged["top_feature_1"]) <= {"a", "b", "color", "ok", "c"}
    assert out.loc[~out["is_anomaly"], "top_feature_1"].isna().all()  # explain="flagged" by default
    shares = flagged[["top_share_1", "top_share_2", "top_share_3"]].to_numpy()
    assert (np.diff(shares, axis=1) <= 1e-6).all()  # largest first
    assert not list(tmp.glob("*.partial"))


def test_explain_all_and_none(fitted):
    tmp, df, _ = fitted
    data = write(df, tmp / "all.csv")
    score_file(tmp / "model", data, tmp / "all.parquet", explain="all")
    score_file(tmp / "model", data, tmp / "none.parquet", explain="none")
    assert pd.read_parquet(tmp / "all.parquet")["top_feature_3"].notna().all()
    assert pd.read_parquet(tmp / "none.parquet")["top_feature_1"].isna().all()
    with pytest.raises(ParameterError, match="explain must be one of"):
        score_file(tmp / "model", data, tmp / "x.parquet", explain="some")
    with pytest.raises(ParameterError, match="threads must be at least 1"):
        score_file(tmp / "model", data, tmp / "x.parquet", threads=0)
    assert not (tmp / "x.parquet").exists()
    score_file(tmp / "model", data, tmp / "one.parquet", explain="none", threads=1)
    one, none = pd.read_parquet(tmp / "one.parquet"), pd.read_parquet(tmp / "none.parquet")
    np.testing.assert_allclose(one["score"], none["score"], rtol=1e-6)
    assert one["is_anomaly"].equals(none["is_anomaly"])


def test_score_schema_mismatch_and_bad_rows(fitted, tmp_path):
    tmp, df, _ = fitted
    with pytest.raises(SchemaError, match=r"no column\(s\) \['color'\]"):
        score_file(tmp / "model", write(df.drop(columns="color"), tmp_path / "a.csv"), tmp_path / "o.csv")
    bad = df.copy()
    bad["a"] = "text"
    with pytest.raises(SchemaError, match="'a' held numbers at fit but holds text"):
        score_file(tmp / "model", write(bad, tmp_path / "b.parquet"), tmp_path / "o.csv")
    holes = df.copy()
    holes.loc[300, "b"] = np.nan
    with pytest.raises(InputError, match=r"'b' has missing or infinite values in 1 row\(s\) \(first: \[300\]\)"):
        score_file(tmp / "model", write(holes, tmp_path / "c.parquet"), tmp_path / "o.parquet", batch_rows=100)
    assert not (tmp_path / "o.parquet").exists() and not list(tmp_path.glob("*.partial"))
    with pytest.raises(BundleError, match="no saved model"):
        score_file(tmp_path / "nomodel", tmp / "test.parquet", tmp_path / "o.csv")


def test_evaluate_file_collects_what_the_report_draws(fitted):
    tmp, df, _ = fitted
    data = write(df, tmp / "eval.csv")
    ev = evaluate_file(tmp / "model", data, label_column="label", batch_rows=50, top_n=5)
    model = load_model(tmp / "model")
    scores = model.detector.anomaly_score(model.encoder.transform(df))
    np.testing.assert_allclose(ev.scores, scores, rtol=1e-6)
    np.testing.assert_array_equal(ev.labels, df["label"])
    assert ev.has_labels and ev.metrics["n_anomalies"] == 40
    top = np.argsort(-scores, kind="stable")[:5]
    assert [r.row for r in ev.top_rows] == top.tolist()
    assert ev.top_rows[0].contributions[0].value == df.loc[top[0], ev.top_rows[0].contributions[0].feature]
    names = [op.name for op in ev.operating_points]
    assert names[0].startswith("current") and "best F1" in names
    unlabelled = evaluate_file(tmp / "model", data)
    assert unlabelled.labels is None and not unlabelled.has_labels


def test_labelled_threshold_needs_a_label_column(tmp_path):
    data = write(mixed_frame(100), tmp_path / "d.csv")
    with pytest.raises(InputError, match="pass --label-column"):
        fit_file(data, out=tmp_path / "m", params=FAST, threshold="best-f1")
    res = fit_file(data, out=tmp_path / "m", params=FAST, threshold="best-f1", label_column="label")
    assert res.threshold == "best-f1" and res.threshold_value is not None


def test_contaminated_and_params():
    assert parse_params("autoencoder", ["hidden=16,8", "lr=1e-2", "robust=true"]) == {
        "hidden": (16, 8),
        "lr": 0.01,
        "robust": True,
    }
    assert parse_params("autoencoder", {"hidden": [4]}) == {"hidden": (4,)}
    with pytest.raises(ParameterError, match=r"no parameter\(s\) \['size'\]"):
        parse_params("autoencoder", ["size=3"])
    with pytest.raises(ParameterError, match="key=value"):
        parse_params("autoencoder", ["epochs"])


def test_contaminated_sets_the_share(tmp_path):
    data = write(mixed_frame(100).drop(columns="label"), tmp_path / "d.parquet")
    res = fit_file(data, out=tmp_path / "m", model="pca", contaminated=True)
    assert res.model.detector.contamination == 0.05 and res.threshold == "contamination:0.05"
