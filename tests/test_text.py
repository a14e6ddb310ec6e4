"""Text detectors beyond the shared contract: featuriser, inputs, explanations, files and the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import anomalia as an
from anomalia.cli import main
from anomalia.data.text import HashedTfidf, byte_windows, read_lines, read_texts
from anomalia.detectors import TextDetector, TextLM

LM_FAST = {"length": 32, "width": 16, "layers": 1, "heads": 2, "epochs": 2}


def normal_lines(n: int, seed: int = 0) -> np.ndarray:
    return TextDetector._contract_data(np.random.default_rng(seed), n)


@pytest.fixture(scope="module")
def text_det() -> TextDetector:
    return TextDetector(n_features=2**14, random_state=0).fit(normal_lines(400))


def test_hashing_keeps_ngrams_never_seen_in_training() -> None:
    f = HashedTfidf(n_features=2**12).fit(["aaa bbb", "bbb aaa"])
    unseen = f.transform(["zzz"])
    assert unseen.nnz > 0  # an exact vocabulary would give an empty row here
    # never-seen n-grams weigh most (all of them but the word-boundary space, which training saw)
    assert (f.idf_[unseen.indices] == f.idf_.max()).sum() >= unseen.nnz - 1
    assert f.transform(["aaa bbb", ""]).shape == (2, 2**12)


def test_an_injected_word_is_flagged_and_named(text_det: TextDetector) -> None:
    X = np.r_[normal_lines(50, seed=3), ["user login ok session segfault id=12"]]
    p = text_det.p_value(X)
    assert p[-1] < 0.05 and np.median(p[:-1]) > 0.2
    top = text_det.explain(X[-1:], top_k=2)[0]
    assert top[0][0] == "segfault" and top[0][1] > 0.2


def test_lists_series_and_frames_score_the_same(text_det: TextDetector) -> None:
    X = normal_lines(20, seed=4)
    s = text_det.anomaly_score(X)
    np.testing.assert_array_equal(text_det.anomaly_score(list(X)), s)
    np.testing.assert_array_equal(text_det.anomaly_score(pd.Series(X)), s)
    np.testing.assert_array_equal(text_det.anomaly_score(pd.DataFrame({"message": X})), s)
    with pytest.raises(an.InputError, match="text_column"):
        text_det.anomaly_score(pd.DataFrame({"message": X, "id": range(20)}))
    det = TextDetector(n_features=2**12, text_column="message", random_state=0)
    det.fit(pd.DataFrame({"message": normal_lines(200), "id": range(200)}))
    rows = an.Model(det, name="m").score(pd.DataFrame({"message": X, "id": range(20)}), explain="all")
    assert rows.contributions is not None and len(rows.contributions.of(0)) == 3
    assert rows.to_arrow().column("top_feature_1").to_pylist()[0] in X[0].split()


def test_long_texts_are_scored_in_overlapping_windows() -> None:
    texts = ["a" * 100, "", "héllo"]
    w = byte_windows(texts, 32)
    for i, data in enumerate(w.data):  # every byte and the end of each text is scored exactly once
        counted = sum(int(w.counted[r].sum()) for r in np.flatnonzero(w.text == i))
        assert counted == len(data) + 1
    det = TextLM(**LM_FAST, random_state=0).fit(normal_lines(120))
    s = det.surprisal(["user login " * 10])[0]
    assert s.size == len("user login " * 10) + 1 and np.isfinite(s).all()
    np.testing.assert_allclose(det.anomaly_score(["user login " * 10])[0], s.mean())


def test_the_gru_cell_and_schedules_fit_save_and_score_alike(tmp_path) -> None:
    det = TextLM(cell="gru", width=16, epochs=2, schedule="constant", random_state=0).fit(normal_lines(120))
    X = ["user login ok id=3", "zzzz qqqq xxxx"]
    det.save(tmp_path / "gru")
    back = an.load(tmp_path / "gru")
    np.testing.assert_array_equal(back.anomaly_score(X), det.anomaly_score(X))
    s = det.surprisal(X)[0]
    assert s.size == len(X[0]) + 1 and np.isfinite(s).all()
    # the padding and the start-of-text token are never scored: one more padded batch-mate changes nothing
    np.testing.assert_allclose(det.anomaly_score(X[:1]), det.anomaly_score([X[0], "x" * 40])[:1], rtol=1e-5)
    with pytest.raises(an.ParameterError, match="cell"):
        TextLM(cell="lstm").fit(normal_lines(40))


def test_training_windows_are_cut_afresh_every_epoch() -> None:
    import torch

    from anomalia.detectors.text_lm import ReshuffledStream

    texts = np.array(normal_lines(50), dtype=object)
    source = ReshuffledStream(texts, 16, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    epochs = [torch.cat(list(source.batches(8, gen))) for _ in range(2)]
    corpus = np.bincount(np.frombuffer("".join(texts).encode(), np.uint8), minlength=256)
    total = corpus.sum() + len(texts) + 1  # the bytes, each text's end, the stream's start
    for windows in epochs:  # every byte once per epoch, but for the last partial window (< 16 targets)
        assert windows.shape[1] == 17 and windows.shape[0] == (total - 1) // 16
        seen = np.bincount(windows[:, 1:].reshape(-1).numpy(), minlength=258)[:256]
        assert (seen <= corpus).all() and corpus.sum() - seen.sum() < 16
    assert {tuple(w.tolist()) for w in epochs[0]} != {tuple(w.tolist()) for w in epochs[1]}
    with pytest.raises(an.ParameterError, match="reshuffle"):
        TextLM(reshuffle="yes").fit(normal_lines(40))


def test_keep_rows_saves_the_texts(tmp_path) -> None:
    det = TextDetector(n_features=2**12, keep_rows=True, random_state=0).fit(normal_lines(100))
    det.save(tmp_path / "m")
    back = an.load(tmp_path / "m")
    np.testing.assert_array_equal(back.replay_, det.replay_)
    back.partial_fit(normal_lines(40, seed=5))
    assert back.n_updates_ == 1 and back.memory_.shape[0] > det.memory_.shape[0]


def test_log_files_and_text_columns_are_read(tmp_path) -> None:
    log = tmp_path / "app.log"
    log.write_text("first line\r\n\nsecond line\n")
    assert read_lines(log).tolist() == ["first line", "second line"]
    assert read_texts(log).tolist() == ["first line", "second line"]
    pd.DataFrame({"m": ["x", None]}).to_csv(tmp_path / "t.csv", index=False)
    assert read_texts(tmp_path / "t.csv", "m").tolist() == ["x", ""]
    with pytest.raises(an.InputError, match="text-column"):
        read_texts(tmp_path / "t.csv")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_command_line_on_a_log_file_and_a_text_column(tmp_path, capsys) -> None:
    lines = normal_lines(300)
    (tmp_path / "app.log").write_text("\n".join(lines) + "\n")
    (tmp_path / "new.log").write_text("\n".join([*lines[:30], "FATAL kernel panic segfault 0xdeadbeef"]) + "\n")
    code, out, err = run(["fit", tmp_path / "app.log", "--out", tmp_path / "m", "--set", "n_features=4096"], capsys)
    assert code == 0, err
    assert "text" in out
    code, out, err = run(["score", tmp_path / "m", tmp_path / "new.log", "--out", tmp_path / "s.parquet"], capsys)
    assert code == 0, err
    scored = pq.read_table(tmp_path / "s.parquet").to_pandas()
    assert len(scored) == 31 and scored["is_anomaly"].iloc[-1]
    assert scored["top_feature_1"].iloc[-1] in {"FATAL", "kernel", "panic", "segfault", "0xdeadbeef"}

    frame = pd.DataFrame({"id": range(331), "message": [*lines, *lines[:30], "FATAL kernel panic"]})
    frame["label"] = (frame["id"] == 330).astype(int)
    frame.to_csv(tmp_path / "msgs.csv", index=False)
    args = ["fit", tmp_path / "msgs.csv", "--text-column", "message", "--label-column", "label"]
    args += ["--out", tmp_path / "m2", "--model", "text-lm", "--set", "width=16", "--set", "epochs=3"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    code, out, err = run(["evaluate", tmp_path / "m2", tmp_path / "msgs.csv", "--label-column", "label"], capsys)
    assert code == 0 and "ROC-AUC" in out, err
    args = ["score", tmp_path / "m2", tmp_path / "msgs.csv", "--out", tmp_path / "s.csv", "--keep", "id"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "s.csv")["id"]) == list(range(331))

    code, _, err = run(["fit", tmp_path / "msgs.csv", "--text-column", "nope", "--out", tmp_path / "m3"], capsys)
    assert code == 2 and "nope" in err and "Traceback" not in err
    args = ["fit", tmp_path / "msgs.csv", "--text-column", "message", "--impute", "median", "--out", tmp_path / "m4"]
    code, _, err = run(args, capsys)
    assert code == 2 and "--impute" in err


def test_readme_text_example_runs(capsys) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Text and logs") : readme.index("### Records with several parts")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (text)", "exec"), {})
    out = capsys.readouterr().out
    assert "[1.    0.008]" in out and "0xdeadbeef" in out
