"""anomalia.model.Model: one folder, one manifest read, one scoring step for every modality, one network pass
for scores and explanations; decisions as objects; stateless inference that many threads can share."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import anomalia as an
from anomalia import bundle
from anomalia.explain.counterfactual import FIXED_ROWS, counterfactual_top
from anomalia.model import Model
from anomalia.workflows import fit_file

from tabular_files import FAST, mixed_frame, write


@pytest.fixture(scope="module")
def table_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("model")
    df = mixed_frame(400)
    fit_file(write(df, tmp / "train.csv"), out=tmp / "m", params=FAST, label_column="label")
    return tmp / "m", df


def test_a_folder_is_read_once_and_scores_match_the_detector(table_model, monkeypatch) -> None:
    path, df = table_model
    reads = []
    real = bundle.read_manifest
    monkeypatch.setattr(bundle, "read_manifest", lambda p: reads.append(p) or real(p))
    m = Model.load(path)
    assert len(reads) == 1 and m.name == "m" and m.version == an.read_manifest(path)["version"]
    assert m.input_kind == "table" and m.input_columns == ["a", "b", "color", "ok", "c"]
    rows = m.score(df, explain="all")
    X = m.encoder.transform(df)
    np.testing.assert_array_equal(rows.score, m.detector.anomaly_score(X))
    np.testing.assert_array_equal(rows.p_value, m.detector.p_value(X))
    np.testing.assert_array_equal(rows.is_anomaly, m.detector.is_anomaly(X))
    assert rows.model_name == "m" and rows.model_version == m.version
    # the contributions from the scoring pass are the detector's per-feature parts summed per input column,
    # each divided by that column's usual part on held-out normal rows (feature_scale_), as shares
    det = m.detector
    relative = m.encoder.group_shares(det._feature_scores(X)) / m.encoder.group_shares(det.feature_scale_[None, :])
    shares = relative / relative.sum(axis=1, keepdims=True)
    top = np.argmax(shares, axis=1)
    assert rows.contributions is not None
    plain = ~rows.is_anomaly
    np.testing.assert_array_equal(rows.contributions.index[plain, 0], top[plain])
    np.testing.assert_allclose(rows.contributions.share[plain, 0], shares[plain, top[plain]], rtol=1e-5)
    # flagged rows: their top candidates by relative part, re-ranked by how much repairing each lowers the score
    flagged = np.flatnonzero(rows.is_anomaly)
    assert flagged.size
    candidates = np.argsort(-shares[flagged], axis=1, kind="stable")[:, :5]
    index, share = counterfactual_top(det, X[flagged], candidates, m.encoder.groups)
    np.testing.assert_array_equal(rows.contributions.index[flagged, 0], index[:, 0])
    np.testing.assert_allclose(rows.contributions.share[flagged, 0], share[:, 0], rtol=1e-5)


def test_the_network_runs_once_per_row_explanations_included(table_model) -> None:
    path, df = table_model
    m = Model.load(path)
    seen = []
    hook = m.detector.net_.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    try:
        rows = m.score(df, explain="flagged")
    finally:
        hook.remove()
    flagged = np.flatnonzero(rows.is_anomaly)
    # one forward pass over every row gave the scores and the explanations; the values the model expected
    # (observed vs expected in the explanations) take one more pass over the explained rows only, and the
    # counterfactual re-ranking of the flagged rows one pass per candidate column (5) plus one for the
    # category the model expects of the one-hot column (after a one-row probe), in calls of exactly
    # FIXED_ROWS rows (the last one padded)
    padded = -(-flagged.size // FIXED_ROWS) * FIXED_ROWS
    assert sum(seen) == len(df) + flagged.size + 1 + (5 + 1) * padded
    assert flagged.size and (rows.contributions.index[flagged, 0] >= 0).all()
    assert (rows.contributions.index[~rows.is_anomaly] == -1).all()


def test_scoring_module_is_the_code_that_scores(table_model) -> None:
    det = Model.load(table_model[0]).detector
    X = Model.load(table_model[0]).encoder.transform(table_model[1])
    module = det.scoring_module()
    assert isinstance(module, torch.nn.Module) and not module.training
    with torch.inference_mode():
        out = module(torch.from_numpy(X)).numpy().astype(np.float64)
        scores, parts = det.scoring_module(parts=True)(torch.from_numpy(X))
    np.testing.assert_array_equal(out, det.anomaly_score(X))
    np.testing.assert_allclose(parts.mean(dim=1).numpy(), scores.numpy(), rtol=1e-6)


@pytest.mark.parametrize("cls", [an.AutoEncoder, an.VAE, an.WindowAutoEncoder, an.ConvAutoEncoder])
def test_every_deep_detector_scores_through_its_module(cls) -> None:
    det = cls(**cls.test_params, random_state=0).fit(cls._contract_data(np.random.default_rng(0), 160))
    module = det.scoring_module(parts=True)
    assert module.with_parts and isinstance(module.net, torch.nn.Module)


def test_one_model_scores_from_many_threads(table_model) -> None:
    path, df = table_model
    m = Model.load(path)
    expected = m.score(df, explain="all")
    chunks = [df.iloc[i : i + 40] for i in range(0, len(df), 40)]
    before = torch.get_num_threads()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: m.score(c, explain="all"), chunks * 4))
    assert torch.get_num_threads() == before
    got = np.concatenate([r.score for r in results[: len(chunks)]])
    np.testing.assert_allclose(got, expected.score, rtol=1e-6)
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.score, results[i % len(chunks)].score)


def test_scored_rows_to_arrow_and_records(table_model) -> None:
    path, df = table_model
    rows = Model.load(path).score(df.iloc[:10], explain="all", top_k=2, row_offset=100)
    table = rows.to_arrow()
    assert table.column_names[:4] == ["row", "score", "p_value", "is_anomaly"]
    assert table.column("row").to_pylist() == list(range(100, 110))
    assert {"top_feature_1", "top_share_2"} <= set(table.column_names) and "top_feature_3" not in table.column_names
    rec = rows.to_records()[0]
    assert rec["row"] == 100 and len(rec["contributions"]) == 2 and rec["contributions"][0]["feature"] in df.columns
    both = an.ScoredRows.concat([rows, rows])
    assert len(both) == 20 and both.contributions.index.shape == (20, 2)


def test_bad_explain_option_and_unnamed_arrays(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    det = an.PCA(random_state=0).fit(X)
    m = Model(det, name="pca")
    rows = m.score(X[:5], explain="all")  # numeric arrays score without an encoding
    assert rows.contributions.names == ("x0", "x1", "x2")
    with pytest.raises(an.ParameterError, match="explain must be one of"):
        m.score(X, explain="sometimes")
    with pytest.raises(an.BundleError, match="cannot read files"):
        _ = m.encoder


def test_fit_threshold_leaves_the_constructor_argument_alone(blobs) -> None:
    train, normal, anomalies = blobs
    det = an.AutoEncoder(hidden=(8, 4), epochs=5, random_state=0).fit(train)
    X_val, y_val = np.r_[normal, anomalies], np.r_[np.zeros(len(normal)), np.ones(len(anomalies))]
    det.fit_threshold(X_val, y_val, threshold="best-f1")
    assert det.threshold is None and det.threshold_.spec == "best-f1"
    assert det.threshold_rule().spec == "false-alarm:0.01"
    np.testing.assert_array_equal(det.decide(det.anomaly_score(X_val)), det.is_anomaly(X_val))
    np.testing.assert_array_equal(det.calibrator_.p_values(det.anomaly_score(normal)), det.p_value(normal))


def test_the_threshold_is_set_in_one_place(tmp_path: Path) -> None:
    data = write(mixed_frame(100), tmp_path / "d.csv")
    with pytest.raises(an.ParameterError, match="--threshold"):
        fit_file(data, out=tmp_path / "m", params=[*FAST, "threshold=quantile:0.9"])


def test_a_dataset_folder_is_not_mistaken_for_an_image_folder(table_model, tmp_path: Path) -> None:
    from anomalia.cli import main

    path, df = table_model
    folder = tmp_path / "dataset"
    folder.mkdir()
    write(df, folder / "part-0.parquet")
    with pytest.raises(an.InputError, match=r"is a folder; give a \.csv or \.parquet file"):
        an.workflows.fit(folder, out=tmp_path / "m2", params=FAST)
    with pytest.raises(SystemExit) as exc:  # a table model reads tables, whatever the path looks like
        main(["score", str(path), str(folder), "--out", str(tmp_path / "s.csv")])
    assert exc.value.code == 2


def test_threads_share_one_series_model_each_with_its_stream() -> None:
    t = np.arange(900)
    rng = np.random.default_rng(0)
    series = np.stack([np.sin(t / 7.0), np.cos(t / 11.0)], axis=1) + 0.05 * rng.normal(size=(900, 2))
    det = an.CNNForecaster(window=16, filters=4, hidden=8, epochs=3, smoothing=4, random_state=0).fit(series[:500])
    streams = [series[500:] + 0.3 * k for k in range(6)]
    expected = [det.anomaly_score(s) for s in streams]  # each stream scored whole, from no history

    barrier = threading.Barrier(6)

    def run(k: int) -> np.ndarray:
        barrier.wait()  # every thread scores at the same time
        state, parts = det.new_stream(), []
        for i in range(0, 400, 25):
            out, state = det.score_stream(streams[k][i : i + 25], state)
            parts.append(out)
        return np.concatenate(parts)

    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(run, range(6)))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    assert det.stream_.n_seen == 0  # the model itself did not move


def test_stream_state_round_trips_and_streaming_thresholds_move_with_it() -> None:
    t = np.arange(4000)
    rng = np.random.default_rng(1)
    series = (np.sin(t / 9.0) + 0.1 * rng.normal(size=4000))[:, None]
    det = an.CNNForecaster(window=8, filters=4, hidden=8, epochs=2, threshold="spot:1e-3", random_state=0)
    det.fit(series[:3000])
    assert det.threshold_.streaming and det.stream_start_.threshold is not None
    state = det.stream_start_
    scores, state = det.score_stream(series[3000:3500], state)
    flags, state = det.decide_stream(scores, state)
    back = an.StreamState.from_dict(state.to_dict())
    np.testing.assert_array_equal(back.context, state.context)
    assert back.threshold == state.threshold and back.n_seen == state.n_seen == 500
    a, _ = det.decide_stream(*det.score_stream(series[3500:], state))
    b, _ = det.decide_stream(*det.score_stream(series[3500:], back))
    np.testing.assert_array_equal(a, b)
    assert flags.shape == (500,)


def test_the_command_line_score_reads_the_manifest_once(table_model, tmp_path: Path, monkeypatch) -> None:
    from anomalia.cli import main

    path, df = table_model
    data = write(df, tmp_path / "new.parquet")
    reads = []
    real = bundle.read_manifest
    monkeypatch.setattr(bundle, "read_manifest", lambda p: reads.append(p) or real(p))
    with pytest.raises(SystemExit) as exc:
        main(["score", str(path), str(data), "--out", str(tmp_path / "s.parquet")])
    assert exc.value.code in (0, None) and len(reads) == 1
    out = pd.read_parquet(tmp_path / "s.parquet")
    assert len(out) == len(df) and out.loc[out["is_anomaly"], "top_feature_1"].notna().all()


@pytest.mark.filterwarnings("ignore:The tensor attributes self.net:UserWarning")  # torch's own LSTM, on export
@pytest.mark.parametrize("cls", [an.AutoEncoder, an.VAE, an.CNNForecaster, an.LSTMAutoEncoder, an.ConvAutoEncoder])
def test_scoring_modules_export_to_graphs_that_score_the_same(cls) -> None:
    # what a later export (ONNX) starts from: the module that scores, as a torch.export graph with a free
    # batch size, gives the detector's scores
    X = cls._contract_data(np.random.default_rng(0), 160)
    det = cls(**cls.test_params, random_state=0).fit(X)
    if det.input_kind == "series":
        from anomalia.data import sliding_windows

        x = torch.from_numpy(np.ascontiguousarray(sliding_windows(X, det.span)))
        expected = det.anomaly_score(X)[det.span - 1 :]
    else:
        x = torch.from_numpy(X if det.input_kind == "table" else X[:, None])
        expected = det.anomaly_score(X)
    graph = torch.export.export(det.scoring_module(), (x[:8],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    with torch.inference_mode():
        got = graph.module()(x).numpy().astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
