"""Records with several parts on the command line: ``anomalia fit data.csv --part NAME=DETECTOR:COLS`` (or a run
file's ``parts:`` block) fits one multimodal model; ``anomalia score`` reads new files with the saved column map;
bad part specifications get one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalia.cli import main
from anomalia.model import Model

WORDS = ["user login ok", "job finished", "backup completed", "cache hit", "disk usage normal", "session closed"]


def run(args: list, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def one_line_error(result: tuple[int, str, str], *needles: str) -> None:
    code, _, err = result
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cpu = rng.normal(50, 5, n)
    mem = 0.5 * cpu + rng.normal(0, 1, n)
    return pd.DataFrame({"cpu": cpu, "mem": mem, "msg": rng.choice(WORDS, n), "id": range(n)})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("mm")
    train = records(500, 0).assign(label=0)
    train.loc[:9, "cpu"] = 500.0  # labelled anomalies stay out of training
    train.loc[:9, "label"] = 1
    train.to_csv(tmp / "train.csv", index=False)
    new = records(40, 1)
    new.loc[3, "cpu"], new.loc[7, "msg"] = 95.0, "kernel panic: segfault in worker"
    new.to_csv(tmp / "new.csv", index=False)
    return tmp / "train.csv", tmp / "new.csv"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fit_and_score_a_file_of_records_with_two_parts(files, tmp_path: Path, capsys) -> None:
    train, new = files
    parts = ["--part", "numbers=autoencoder:cpu,mem", "--part", "message=text:msg"]
    args = ["fit", train, *parts, "--label-column", "label", "--set", "numbers.epochs=5", "--out", tmp_path / "m"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "multimodal" in out
    m = Model.load(tmp_path / "m")
    assert m.detector.columns == {"numbers": ["cpu", "mem"], "message": "msg"}
    assert m.detector.parts_["numbers"].epochs == 5 and m.detector.n_train_rows_ < 490  # labelled rows left out
    code, _, err = run(["score", tmp_path / "m", new, "--out", tmp_path / "s.csv", "--keep", "id"], capsys)
    assert code == 0, err
    s = pd.read_csv(tmp_path / "s.csv")
    assert len(s) == 40 and list(s["id"]) == list(range(40))
    flagged = set(s.index[s["is_anomaly"]])
    assert {3, 7} <= flagged and len(flagged) <= 6
    assert s.loc[3, "top_feature_1"] == "numbers" and s.loc[7, "top_feature_1"] == "message"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_run_file_parts_block(files, tmp_path: Path, capsys) -> None:
    train, _ = files
    (tmp_path / "run.yaml").write_text(
        f"data: {train}\nout: {tmp_path / 'm'}\nlabel-column: label\nset: {{fusion: sum, numbers.n_components: 1}}\n"
        "parts:\n  numbers: {detector: pca, columns: [cpu, mem]}\n  message: text:msg\n"
    )
    code, _, err = run(["fit", "--config", tmp_path / "run.yaml"], capsys)
    assert code == 0, err
    det = Model.load(tmp_path / "m").detector
    assert det.fusion == "sum" and det.parts_["numbers"].name == "pca" and det.parts_["numbers"].n_components == 1
    assert det.parts_["message"].name == "text"


def test_bad_parts_get_one_line_errors(files, tmp_path: Path, capsys) -> None:
    train, _ = files
    out = ["--out", tmp_path / "m"]
    fit = ["fit", train, *out]
    one_line_error(run([*fit, "--part", "numbers"], capsys), "--part 'numbers'", "NAME=DETECTOR:COLUMN")
    one_line_error(run([*fit, "--part", "a=nosuch:cpu"], capsys), "unknown detector 'nosuch'", "anomalia models")
    one_line_error(run([*fit, "--part", "a=autoencoder:cpu,nope"], capsys), "no column(s) ['nope']")
    one_line_error(run([*fit, "--part", "t=text:msg,cpu"], capsys), "text part reads one column")
    one_line_error(run([*fit, "--part", "a=pca:cpu", "--part", "a=pca:mem"], capsys), "'a' is given twice")
    one_line_error(run([*fit, "--part", "s=cnn-forecaster:cpu"], capsys), "reads series")
    one_line_error(run([*fit, "--part", "a=pca:cpu", "--set", "b.epochs=3"], capsys), "no part named 'b'")
    one_line_error(run([*fit, "--part", "a=pca:cpu", "--time-column", "t"], capsys), "--time-column", "multimodal")
    one_line_error(run([*fit, "--part", "a=pca:cpu", "--model", "knn"], capsys), "--part fits a multimodal model")
    one_line_error(run([*fit, "--model", "multimodal"], capsys), "needs its parts", "--part")
    assert not (tmp_path / "m").exists()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_commands_and_run_file_run_as_written(files, tmp_path: Path, monkeypatch, capsys) -> None:
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Records with several parts") : readme.index("## Is my normal data enough?")]
    (bash,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    (yaml_text,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    train, new = files
    monkeypatch.chdir(tmp_path)
    Path("records.csv").write_text(train.read_text())
    Path("today.csv").write_text(new.read_text())
    for line in bash.splitlines():
        cmd = shlex.split(line.split("#")[0])
        assert cmd[0] == "anomalia"
        code, _, err = run([*cmd[1:], *(["--set", "numbers.epochs=3"] if cmd[1] == "fit" else [])], capsys)
        assert code == 0, (line, err)
    assert len(pd.read_csv("scored.csv")) == 40
    quick = yaml_text.replace("numbers.epochs: 20", "numbers.epochs: 3").replace("mm-model/", "m2/")
    Path("run.yaml").write_text(quick)
    code, _, err = run(["fit", "--config", "run.yaml"], capsys)
    assert code == 0, err
    assert Model.load("m2").detector.columns == {"numbers": ["cpu", "mem"], "message": "msg"}
