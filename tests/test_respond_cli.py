"""`anomalia score --respond` and `anomalia alerts ...` end to end on small files; bad input: one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomalia.cli import main

from tabular_files import FAST, mixed_frame, write

SET = [x for kv in FAST for x in ("--set", kv)]


def run(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("respond-cli")
    df = mixed_frame(300)
    df["host"] = np.where(np.arange(300) % 2 == 0, "web-1", "web-2")
    train = write(df, tmp / "train.csv")
    test = write(df, tmp / "test.csv")
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(train), "--label-column", "label", "--drop", "host", "--out", str(tmp / "model"), *SET])
    assert exc.value.code in (0, None)
    cfg = tmp / "response.yaml"
    cfg.write_text(
        "store: sqlite:///alerts.db\nentity: host\nincidents: {group_wait: 0s, group_by: [entity]}\n"
        "sinks:\n  - {jsonl: sent.jsonl}\n"
    )
    return tmp, tmp / "model", test, cfg


def test_score_respond_raises_alerts_once(setup, capsys):
    tmp, model, test, cfg = setup
    code, out, err = run(["score", model, test, "--out", tmp / "s.csv", "--respond", cfg], capsys)
    assert code == 0, err
    assert "alerts raised" in out
    code, out, err = run(["alerts", "list", "--config", cfg, "--json", "--limit", "1000"], capsys)
    assert code == 0, err
    alerts = [json.loads(x) for x in out.splitlines()]
    flagged = int(__import__("pandas").read_csv(tmp / "s.csv")["is_anomaly"].sum())
    assert len(alerts) == flagged > 0
    assert {a["entity"] for a in alerts} <= {"web-1", "web-2"}  # host is no feature of the model
    for key in ("id", "fingerprint", "starts_at", "status", "severity", "entity", "score", "p_value"):
        assert key in alerts[0]
    assert alerts[0]["threshold"] is not None
    code, out, err = run(["score", model, test, "--out", tmp / "s2.csv", "--respond", cfg], capsys)
    assert code == 0, err
    code, out, _ = run(["alerts", "list", "--config", cfg, "--json", "--limit", "1000"], capsys)
    assert len(out.splitlines()) == flagged  # a re-run on the same file adds none

    code, out, err = run(["alerts", "deliver", "--config", cfg], capsys)
    assert code == 0 and "delivered 2" in out, out + err  # one notification per host
    sent = [json.loads(x) for x in (tmp / "sent.jsonl").read_text().splitlines()]
    assert {a["id"] for line in sent for a in line["alerts"]} == {a["id"] for a in alerts}

    first = alerts[0]["id"]
    code, out, err = run(["alerts", "show", first[:8], "--config", cfg, "--json"], capsys)
    assert code == 0 and json.loads(out)["id"] == first, err
    code, out, err = run(["alerts", "ack", first, "--config", cfg, "--who", "alice", "-m", "on it"], capsys)
    assert code == 0 and "acknowledged" in out, err
    code, out, err = run(["alerts", "false-positive", first, "--config", cfg, "--who", "alice"], capsys)
    assert code == 0 and "resolved" in out, err
    code, out, _ = run(["alerts", "show", first, "--config", cfg, "--json"], capsys)
    assert [e["action"] for e in json.loads(out)["audit"]] == ["ack", "false-positive"]
    code, out, err = run(["alerts", "silence", "--config", cfg, "--match", "entity=web-2", "--duration", "2h"], capsys)
    assert code == 0 and "silence" in out, err
    code, out, _ = run(["alerts", "silence", "--config", cfg, "--list"], capsys)
    assert any(json.loads(x)["matchers"] == {"entity": "web-2"} for x in out.splitlines())
    code, out, err = run(["alerts", "replay", "--config", cfg], capsys)
    assert code == 0 and "replayed 0" in out, err
    code, out, _ = run(["alerts", "list", "--config", cfg, "--status", "resolved"], capsys)
    assert code == 0 and "Alerts" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["alerts", "list", "--config", "missing.yaml"], ["missing.yaml", "no such response file"]),
        (["alerts", "list", "--config", "{bad}", "--status", "open"], ["--status"]),
        (["alerts", "list", "--config", "{bad}", "--severity", "huge"], ["--severity"]),
        (["alerts", "show", "nope-nope", "--config", "{good}"], ["no alert"]),
        (["alerts", "ack", "nope-nope", "--config", "{good}"], ["no alert"]),
        (["alerts", "silence", "--config", "{good}", "--match", "entity"], ["--match"]),
        (["alerts", "silence", "--config", "{good}", "--match", "entity=a"], ["--duration"]),
        (["alerts", "silence", "--config", "{good}", "--match", "entity=a", "--duration", "soon"], ["duration"]),
        (["alerts", "silence", "--config", "{good}", "--match", "a=b", "--end", "tomorrow"], ["--end"]),
        (["alerts", "list", "--config", "{unknown}"], ["unknown key 'sinkz'"]),
        (["alerts", "list", "--config", "{duration}"], ["incidents.gap"]),
        (["alerts", "list", "--config", "{badstore}"], ["store"]),
        (["alerts", "list", "--config", "{good}", "--since", "yesterday-ish"], ["since"]),
    ],
)
def test_bad_arguments_are_one_line_errors(setup, tmp_path, capsys, args, needles):
    _, _, _, cfg = setup
    files = {
        "good": cfg,
        "bad": cfg,
        "unknown": "store: sqlite:///x.db\nsinkz: []\n",
        "duration": "store: sqlite:///x.db\nincidents: {gap: forever}\n",
        "badstore": "store: oracle://u@h/db\n",
    }
    resolved = []
    for a in args:
        if a.startswith("{") and a.endswith("}"):
            value = files[a[1:-1]]
            if isinstance(value, str):
                p = tmp_path / f"{a[1:-1]}.yaml"
                p.write_text(value)
                value = p
            a = str(value)
        resolved.append(a)
    code, _, err = run(resolved, capsys)
    one_line_error(code, err, *needles)


def test_score_with_a_bad_response_file_fails_before_scoring(setup, tmp_path, capsys):
    _, model, test, _ = setup
    bad = tmp_path / "r.yaml"
    bad.write_text("store: sqlite:///a.db\nflap: {open: 7 of 3}\n")
    code, _, err = run(["score", model, test, "--out", tmp_path / "o.csv", "--respond", bad], capsys)
    one_line_error(code, err, "flap.open")
    assert not (tmp_path / "o.csv").exists()


def test_deliver_follow_stops_on_sigterm(setup, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "r.yaml"
    cfg.write_text("store: sqlite:///a.db\nsinks:\n  - {jsonl: sent.jsonl}\n")
    cmd = [
        sys.executable,
        "-c",
        "from anomalia.cli import main; main()",
        "alerts",
        "deliver",
        "--follow",
        "--poll",
        "0.05",
        "--config",
        str(cfg),
    ]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while not (tmp_path / "a.db").exists() and time.monotonic() < end:  # the store is open: it is delivering
        time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "delivered 0" in out and "still queued 0" in out
