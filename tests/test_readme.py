"""The README's command-line examples run as written (on a CSV like a user's own)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

import anomalia as an
from anomalia.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang: str) -> list[str]:
    text = README.read_text()
    start = text.index("## Your own CSV")
    end = text.index("## Use it from Python")
    return re.findall(rf"```{lang}\n(.*?)```", text[start:end], flags=re.S)


def commands() -> list[list[str]]:
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line and line != "make install":  # the test already runs inside the installed .venv
                out.append(shlex.split(line))
    return out


@pytest.fixture
def user_csv(tmp_path, monkeypatch):
    data = load_breast_cancer(as_frame=True)
    df = data.data.copy()
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df["label"] = (data.target == 0).astype(int)  # malignant = anomaly
    df.to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code in (0, None), args


def test_readme_quickstart_commands_run_as_written(user_csv):
    cmds = commands()
    assert [c[0] for c in cmds] == [".venv/bin/anomalia"] * 4
    assert len(blocks("bash")[0].strip().splitlines()) == 3  # three commands from the README to a report
    for cmd in cmds:
        run(cmd[1:])
        if cmd[1] == "report":
            html = (user_csv / "report.html").read_text()
            assert 'data-plot="score-distribution"' in html and 'data-table="top-anomalies"' in html
            if "--label-column" in cmd:
                assert 'data-plot="roc"' in html and 'data-plot="threshold-sweep"' in html


def test_readme_run_file_works(user_csv):
    (yaml_block,) = blocks("yaml")
    (user_csv / "run.yaml").write_text("\n".join(line.strip() for line in yaml_block.splitlines()))
    run(["fit", "--config", "run.yaml"])
    assert an.read_manifest(user_csv / "model")["preprocess"]["kind"] == "table"
