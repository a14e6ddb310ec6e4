"""The README's "Use it from Python" example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    section = text[text.index("## Use it from Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "model" / "anomalia.json").is_file()


def _blocks(after: str) -> list[str]:
    text = README.read_text()
    return re.findall(r"```python\n(.*?)```", text[text.index(after) :], re.S)


def test_model_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    (code,) = [b for b in _blocks("### Saved models") if "Model.load" in b][:1]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (Model)", "exec"), {})
    assert "[(" in capsys.readouterr().out and (tmp_path / "model" / "anomalia.json").is_file()


def test_stream_state_example_runs_after_the_series_example() -> None:
    series, stream = _blocks("### Time series")[:2]
    namespace: dict = {}
    exec(compile(series, "README.md (time series)", "exec"), namespace)
    exec(compile(stream, "README.md (stream state)", "exec"), namespace)
    assert namespace["scores"].shape == (100,) and namespace["state"].n_seen == 100
    assert namespace["saved"]["n_seen"] == 100
