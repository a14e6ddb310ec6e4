"""anomalia.respond: the response file, alerts and incidents, grouping, flap control, silences, feedback,
durable delivery (a real loopback webhook receiver) and actions, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import math
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalia._core import InputError
from anomalia.respond import Deliverer, Responder, load_config
from anomalia.results import Contributions, ScoredRows

from postgres_server import free_port, postgres_db, postgres_server  # noqa: F401 (fixtures)
from webhook_receiver import Receiver, receiver  # noqa: F401 (fixture)

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def scored(flags, *, times=None, rows=None, p=1e-5, model="m", version="1") -> ScoredRows:
    flags = np.asarray(flags, bool)
    n = flags.size
    c = Contributions(
        ("a", "b"), np.tile(np.array([[0, 1]], np.int32), (n, 1)), np.tile(np.array([[0.75, 0.25]], np.float32), (n, 1))
    )
    return ScoredRows(
        score=np.where(flags, 5.0, 0.1),
        p_value=np.where(flags, p, 0.5),
        is_anomaly=flags,
        row=np.arange(n) if rows is None else np.asarray(rows),
        time=None if times is None else np.asarray(times, dtype="datetime64[s]"),
        contributions=c,
        model_name=model,
        model_version=version,
    )


def ts(seconds) -> np.ndarray:
    return (T0 + np.asarray(seconds, float)).astype("datetime64[s]")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alerts.db'}"
    return request.getfixturevalue("postgres_db")


def responder(url: str, tmp_path: Path, clock: Clock | None = None, **cfg) -> Responder:
    base = {"store": url, "incidents": {"group_wait": 0}, "sinks": [{"jsonl": str(tmp_path / "out.jsonl")}]}
    base.update(cfg)
    return Responder(base, clock=clock or Clock())


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------------------------------------- config
def test_the_issue_example_loads(tmp_path):
    script = tmp_path / "restart-service.sh"
    script.write_text("#!/bin/sh\ncat > /dev/null\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "response.yaml").write_text(
        """
store: sqlite:///alerts.db
entity: host
severity: {critical: 1e-4, major: 1e-3}
incidents: {gap: 10m, group_by: [entity], group_wait: 30s, repeat_interval: 4h}
flap: {open: 3 of 5, close: 5 of 5, suppress: 30m}
sinks:
  - {webhook: "http://127.0.0.1:9000/hook", format: alertmanager, min_severity: major}
  - {jsonl: alerts.jsonl}
actions:
  - {command: ["./restart-service.sh"], when: {severity: critical}, timeout: 30s}
delivery: {max_attempts: 12, max_age: 24h, backoff: {base: 1s, cap: 5m}}
"""
    )
    cfg = load_config(tmp_path / "response.yaml")
    assert cfg.store == f"sqlite:///{tmp_path / 'alerts.db'}"  # relative to the response file
    assert (cfg.flap.open_k, cfg.flap.open_n, cfg.flap.close_k, cfg.flap.suppress) == (3, 5, 5, 1800.0)
    assert cfg.incidents.group_wait == 30 and cfg.incidents.repeat_interval == 4 * 3600
    assert [s.kind for s in cfg.sinks] == ["webhook", "jsonl"] and cfg.sinks[0].format == "alertmanager"
    assert cfg.actions[0].min_severity == "critical" and cfg.actions[0].command == (str(script),)
    assert cfg.delivery.backoff_cap == 300


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"stor": "sqlite://"}, "'stor'"),
        ({"incidents": {"gap": "ten minutes"}}, "incidents.gap"),
        ({"incidents": {"group_wiat": "1s"}}, "incidents.'group_wiat'"),
        ({"flap": {"open": "5 of 3"}}, "flap.open"),
        ({"severity": {"critical": 0.1, "major": 0.01}}, "severity.critical"),
        ({"severity": {"major": 2}}, "severity.major"),
        ({"store": "mysql://u@h/db"}, "store"),
        ({"store": "not a url"}, "store"),
        ({"sinks": [{"webhook": "ftp://x"}]}, "sinks[0].webhook"),
        ({"sinks": [{"jsonl": "a", "webhook": "http://x"}]}, "sinks[0]"),
        ({"sinks": [{"jsonl": "a", "min_severity": "huge"}]}, "sinks[0].min_severity"),
        ({"actions": [{"command": ["/no/such/program"]}]}, "actions[0].command"),
        ({"delivery": {"max_attempts": 0}}, "delivery.max_attempts"),
        ({"delivery": {"backoff": {"cap": "-1s"}}}, "delivery.backoff.cap"),
    ],
)
def test_a_bad_config_names_the_key(raw, needle):
    raw = {"store": "sqlite://", **raw}
    with pytest.raises(InputError) as exc:
        load_config(raw)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_an_unreachable_store_is_an_input_error():
    free = free_port()
    with pytest.raises(InputError, match="store: cannot open"):
        Responder({"store": f"postgresql://nobody@127.0.0.1:{free}/db"})


def test_respond_imports_no_torch():
    code = "import anomalia.respond, anomalia.cli.alerts, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------- alerts
def test_process_is_idempotent_and_reads_the_entity_column(store_url, tmp_path):
    r = responder(store_url, tmp_path, entity="host")
    flags = np.zeros(20, bool)
    flags[[1, 2, 11]] = True
    inputs = pd.DataFrame({"a": np.arange(20.0), "b": 1.0, "host": ["web-1", "web-2"] * 10})  # host: no feature
    first = r.process(scored(flags), inputs=inputs, source="f.csv")
    assert len(first.alerts) == 3 and len(first.opened) == 2  # web-2 (rows 1, 11) and web-1 (row 2)
    again = r.process(scored(flags), inputs=inputs, source="f.csv")
    assert again.alerts == [] and again.duplicates == 3
    other = r.process(scored(flags), inputs=inputs, source="g.csv")  # row 1 of another file is another alert
    assert len(other.alerts) == 3
    stored = r.store.list_alerts(entity="web-2")
    assert len(stored) == 4 and {a.entity for a in stored} == {"web-2"}
    d = stored[0].to_dict()
    assert {"id", "fingerprint", "starts_at", "ends_at", "status", "severity", "entity", "score", "p_value",
            "threshold", "model", "model_version", "summary", "contributions", "inputs"} <= set(d)
    assert d["severity"] == "critical" and d["inputs"]["host"] == "web-2"
    assert d["contributions"][0] == {"name": "a", "share": 0.75, "observed": d["inputs"]["a"], "expected": None,
                                     "normal_low": None, "normal_high": None}
    assert r.store.get_alert(d["id"][:8]).id == d["id"]
    json.dumps(d, allow_nan=False)
    r.close()


def test_a_missing_entity_column_is_named(tmp_path):
    r = responder(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, entity="host")
    with pytest.raises(InputError, match="'host'"):
        r.process(scored([True, False]), inputs=[{"a": 1}, {"a": 2}])
    with pytest.raises(InputError, match="3 rows for 2"):
        r.process(scored([True, False]), inputs=[{"host": 1}] * 3)


def test_consecutive_flags_within_the_gap_are_one_incident(store_url, tmp_path):
    r = responder(store_url, tmp_path, incidents={"gap": "10m", "group_wait": 0})
    flags = [True, True, False, True, False, True]
    res = r.process(scored(flags, times=ts([0, 60, 120, 300, 900, 1500])))
    incs = sorted(r.store.list_incidents(), key=lambda i: i.starts_at)
    assert len(res.opened) == 2 and len(incs) == 2
    assert incs[0].count == 3 and incs[0].status == "closed" and incs[0].ends_at == T0 + 300  # gap 300 → 1500
    assert incs[1].count == 1 and incs[1].status == "open"
    r.process(scored([True], times=ts([1560])))  # once notified, an open incident does not re-notify
    assert r.store.outbox_depth() == 2 and r.store.get_incident(incs[1].id).count == 2
    assert {a.status for a in r.store.list_alerts(incident_id=incs[0].id)} == {"resolved"}
    # one batch: the two openings share the group's one firing notification, which carries every alert that
    # came before it went out; the closed incident has its resolve notification
    notes = {n.kind: n for n in r.store.list_notifications()}
    assert sorted(notes) == ["firing", "resolved"]
    assert set(notes["firing"].alert_ids) == {a.id for a in res.alerts}
    assert notes["resolved"].alert_ids == [incs[0].last_alert_id]
    r.close()


def test_a_storm_of_one_cause_is_a_handful_of_notifications(receiver, tmp_path):  # noqa: F811
    clock = Clock()
    r = Responder(
        {"store": f"sqlite:///{tmp_path / 's.db'}", "entity": "host",
         "incidents": {"group_by": ["model"], "group_wait": "30s", "group_interval": "5m", "gap": "10m"},
         "sinks": [{"webhook": receiver.url + "/hook", "format": "alertmanager"}]},
        clock=clock,
    )
    d = Deliverer(r)
    hosts = [f"web-{i}" for i in range(50)]
    for k in range(5):  # 500 flags from 50 hosts within a minute, in 5 batches, delivering as it goes
        sec = np.arange(100) * 0.12 + 12 * k
        r.process(scored(np.ones(100, bool), times=ts(sec)), inputs={"host": [hosts[i % 50] for i in range(100)]})
        clock.t += 12
        d.run_once()
    clock.t += 60
    d.run_once()
    sent = receiver.delivered
    assert 1 <= len(sent) <= 5
    incidents = r.store.list_incidents()
    assert len(incidents) == 50  # no incident missed ...
    notified = {a["annotations"]["incident_id"] for req in sent for a in req["body"]["alerts"]}
    assert notified == {i.id for i in incidents}  # ... and every one of them reached the receiver
    body = sent[0]["body"]
    assert len(body["alerts"]) > 50  # the flags that came before the group's notification went out ride with it
    assert body["version"] == "4" and body["groupKey"] == "{model=m}" and body["truncatedAlerts"] == 0
    assert body["status"] == "firing" and body["groupLabels"] == {"model": "m"}
    assert all(a["fingerprint"] and a["annotations"]["alert_id"] for a in body["alerts"])
    r.close()


def test_flap_k_of_n_opens_and_closes(tmp_path):
    r = responder(f"sqlite:///{tmp_path / 'f.db'}", tmp_path, flap={"open": "3 of 5", "close": "5 of 5"})
    r.process(scored([True, False, True, False, False], times=ts(range(5))))
    assert r.store.list_incidents() == []  # 2 of 5: below the open rule
    assert {a.status for a in r.store.list_alerts()} == {"suppressed"}
    r.process(scored([True, True, False, False, False, False], times=ts(range(5, 11))))
    (inc,) = r.store.list_incidents()
    assert inc.status == "open" and inc.starts_at == T0 + 6  # the 3rd flag of 5 (t=2, 5, 6) opens it
    r.process(scored([False], times=ts([11])))  # 5 of the last 5 normal closes it
    assert r.store.get_incident(inc.id).status == "closed"
    r.process(scored([False] * 5, times=ts(range(5, 10))))  # a re-run of old normal rows changes nothing
    assert len(r.store.list_incidents()) == 1
    r.close()


def test_a_flapping_series_notifies_at_most_one_pair_per_suppress_window(tmp_path):
    r = responder(f"sqlite:///{tmp_path / 'fl.db'}", tmp_path, flap={"open": "1 of 1", "close": "1 of 1",
                                                                      "suppress": "30m"})
    minutes = np.arange(240)  # 4 hours around the threshold: flagged every other minute
    r.process(scored(minutes % 2 == 0, times=ts(minutes * 60)))
    incs = r.store.list_incidents()
    assert len(incs) == 120 and sum(i.flapping for i in incs) >= 110
    notes = r.store.list_notifications()
    opened = [n for n in notes if n.kind == "firing"]
    closed = [n for n in notes if n.kind == "resolved"]
    assert len(opened) <= math.ceil(240 / 30) and len(closed) <= len(opened)
    r.close()


def test_silences_suppress_matching_alerts(tmp_path):
    clock = Clock()
    r = responder(f"sqlite:///{tmp_path / 'si.db'}", tmp_path, clock, entity="host")
    r.silence({"entity": "db-1"}, duration="1h", who="alice", comment="maintenance")
    r.silence({"entity": "~web-[0-9]+", "severity": "minor"}, duration="1h", who="alice")
    res = r.process(scored([True, True, True], p=1e-2), inputs={"host": ["db-1", "web-7", "cache"]})
    status = {a.entity: a.status for a in res.alerts}
    assert status == {"db-1": "suppressed", "web-7": "suppressed", "cache": "firing"}
    assert r.store.outbox_depth() == 1  # only cache notifies
    clock.t += 7200  # after the window, db-1 notifies again
    res = r.process(scored([True], rows=[9], p=1e-2), inputs={"host": ["db-1"]})
    assert res.alerts[0].status == "firing" and r.store.outbox_depth() == 2
    assert any(e["action"] == "silence" and e["comment"] == "maintenance" for e in r.store.audit())
    r.close()


def test_ack_mutes_reminders_until_resolve(tmp_path):
    clock = Clock()
    r = responder(f"sqlite:///{tmp_path / 'ack.db'}", tmp_path, clock, entity="host",
                  incidents={"group_wait": 0, "repeat_interval": "1h", "gap": "1d"})
    res = r.process(scored([True, True]), inputs={"host": ["a", "b"]})
    Deliverer(r).run_once()
    r.feedback(res.alerts[0].id, "ack", who="alice", comment="looking")
    clock.t += 2 * 3600
    assert r.tick()["repeats"] == 1  # b is reminded, a (acknowledged) is not
    (repeat,) = [n for n in r.store.list_notifications() if n.kind == "repeat"]
    assert repeat.alert_ids == [res.alerts[1].id]
    r.feedback(res.alerts[0].id, "resolve", who="alice")
    assert r.store.list_incidents(entity="a")[0].status == "closed"
    assert [n.kind for n in r.store.list_notifications(status="pending")].count("resolved") == 1
    assert [e["action"] for e in r.store.audit(alert_id=res.alerts[0].id)] == ["ack", "resolve"]
    with pytest.raises(InputError, match="action"):
        r.feedback(res.alerts[0].id, "snooze", who="alice")
    with pytest.raises(InputError, match="no alert"):
        r.feedback("nope-nope", "ack", who="alice")
    r.close()


def test_a_false_positive_stops_its_notifications_and_keeps_the_row(store_url, tmp_path):
    clock = Clock()
    r = responder(store_url, tmp_path, clock, entity="host", incidents={"group_wait": "30s"})
    inputs = {"host": ["a", "b"], "a": [1.5, 2.5], "b": [0.0, 1.0]}
    res = r.process(scored([True, True], version="v7"), inputs=inputs)
    assert r.store.outbox_depth() == 2
    r.feedback(res.alerts[0].id, "false-positive", who="bob", comment="backup job")
    assert r.store.outbox_depth() == 1  # a's pending notification is cancelled before it went out
    assert [n.status for n in r.store.list_notifications() if res.alerts[0].id in n.alert_ids] == ["cancelled"]
    later = r.process(scored([True], rows=[5]), inputs={"host": ["a"], "a": [9.0], "b": [9.0]})
    assert later.alerts[0].status == "suppressed" and r.store.outbox_depth() == 1  # the fingerprint is muted
    r.feedback(res.alerts[1].id, "new-normal", who="bob")
    rows = r.feedback_rows("m")
    assert [(x["kind"], x["model_version"], x["inputs"]["a"]) for x in rows] == [
        ("false-positive", "v7", 1.5), ("new-normal", "v7", 2.5)]
    assert r.feedback_rows("m", kinds=("new-normal",))[0]["who"] == "bob"
    r.close()


def test_raise_event_for_drift(tmp_path):
    r = responder(f"sqlite:///{tmp_path / 'ev.db'}", tmp_path)
    a = r.raise_event(kind="drift", model="m", entity="web-1", summary="score distribution shifted",
                      severity="major", details={"psi": 0.4}, key="w1")
    again = r.raise_event(kind="drift", model="m", entity="web-1", summary="x", severity="major", key="w1")
    assert again.id == a.id and a.kind == "drift" and a.details == {"psi": 0.4}
    assert r.store.get_incident(a.incident_id).count == 1 and r.store.outbox_depth() == 1
    Deliverer(r).run_once()
    (line,) = lines(tmp_path / "out.jsonl")
    assert line["alerts"][0]["kind"] == "drift" and line["idempotency_key"] == line["id"]
    with pytest.raises(InputError, match="severity"):
        r.raise_event(kind="drift", model="m", summary="x", severity="bad")
    r.close()


# ---------------------------------------------------------------------------------------------- delivery
def _webhook(url: str, tmp_path: Path, receiver_url: str, clock: Clock, **delivery) -> Responder:
    return Responder(
        {"store": url, "incidents": {"group_wait": 0},
         "sinks": [{"webhook": receiver_url + "/hook", "name": "hook"}],
         "delivery": {"backoff": {"base": "1s", "cap": "4s"}, **delivery}},
        clock=clock,
    )


def test_retries_carry_one_idempotency_key(store_url, tmp_path, receiver):  # noqa: F811
    receiver.fail_first = 2
    clock = Clock()
    r = _webhook(store_url, tmp_path, receiver.url, clock)
    r.process(scored([True]))
    d = Deliverer(r)
    for _ in range(3):
        d.run_once()
        clock.t += 5  # past the capped backoff
    assert [x["ok"] for x in receiver.requests] == [False, False, True]
    keys = {x["key"] for x in receiver.requests}
    (n,) = r.store.list_notifications()
    assert keys == {n.id} and n.status == "delivered" and n.attempts == 3
    assert receiver.requests[0]["body"] == receiver.requests[2]["body"]  # the payload is frozen at first claim
    r.close()


def test_dead_letters_and_replay(tmp_path, receiver):  # noqa: F811
    receiver.fail_rate = 1.0
    clock = Clock()
    r = _webhook(f"sqlite:///{tmp_path / 'd.db'}", tmp_path, receiver.url, clock, max_attempts=3)
    r.process(scored([True]))
    d = Deliverer(r)
    for _ in range(4):
        d.run_once()
        clock.t += 5
    (n,) = r.store.list_notifications()
    assert n.status == "dead" and n.attempts == 3 and "HTTP 503" in n.last_error
    assert r.store.outbox_depth() == 0
    receiver.fail_rate = 0.0
    assert r.replay(who="carol") == 1
    d.run_once()
    assert r.store.list_notifications()[0].status == "delivered"
    assert len({x["key"] for x in receiver.requests}) == 1 and len(receiver.requests) == 4
    assert any(e["action"] == "replay" and e["who"] == "carol" for e in r.store.audit())
    r.close()


def test_a_4xx_is_a_dead_letter_at_once_and_max_age_bounds_retries(tmp_path, receiver):  # noqa: F811
    receiver.fail_rate, receiver.status = 1.0, 400
    clock = Clock()
    r = _webhook(f"sqlite:///{tmp_path / 'e.db'}", tmp_path, receiver.url, clock, max_age="1m")
    r.process(scored([True]))
    Deliverer(r).run_once()
    assert r.store.list_notifications()[0].status == "dead"
    receiver.status = 503
    r.process(scored([True], model="other"))
    d = Deliverer(r)
    d.run_once()
    clock.t += 120  # older than max_age: the next failure is the last
    d.run_once()
    assert [n.status for n in r.store.list_notifications()] == ["dead", "dead"]
    r.close()


def test_the_circuit_breaker_stops_spending_attempts(tmp_path, receiver):  # noqa: F811
    receiver.fail_rate = 1.0
    clock = Clock()
    r = Responder(
        {"store": f"sqlite:///{tmp_path / 'b.db'}", "entity": "host", "incidents": {"group_wait": 0},
         "sinks": [{"webhook": receiver.url, "name": "hook"}],
         "delivery": {"breaker": {"failures": 2, "cooldown": "1m"}}},
        clock=clock,
    )
    r.process(scored([True] * 6), inputs={"host": list("abcdef")})
    rep = Deliverer(r, workers=1).run_once()  # one at a time: the breaker opens after exactly 2 failures
    assert len(receiver.requests) == 2 and rep.failed == 2 and rep.skipped == 4
    assert sorted(n.attempts for n in r.store.list_notifications()) == [0, 0, 0, 0, 1, 1]
    r.close()


def test_alertmanager_push_sends_postable_alerts_and_ends_them(tmp_path, receiver):  # noqa: F811
    clock = Clock()
    r = Responder(
        {"store": f"sqlite:///{tmp_path / 'am.db'}", "incidents": {"group_wait": 0, "gap": "1m"},
         "sinks": [{"alertmanager": receiver.url, "resend_interval": "1h"}]},
        clock=clock,
    )
    r.process(scored([True], times=ts([0])))
    d = Deliverer(r)
    d.run_once()
    clock.t += 600  # the gap passes: the incident closes and its resolve goes out
    d.run_once()
    paths = {x["path"] for x in receiver.requests}
    assert paths == {"/api/v2/alerts"}
    firing, resolved = (x["body"] for x in receiver.requests[:1] + receiver.requests[-1:])
    assert isinstance(firing, list) and "endsAt" not in firing[0] and firing[0]["labels"]["alertname"]
    assert resolved[0]["endsAt"].startswith("2027-01-15") and resolved[0]["annotations"]["alert_id"]
    r.close()


# ---------------------------------------------------------------------------------------------- actions
def _script(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "act.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return p


def test_an_action_gets_the_alert_on_stdin_and_is_audited(tmp_path):
    got = tmp_path / "got.json"
    script = _script(tmp_path, f"cat > {got}\necho restarted\nexit 3\n")
    r = responder(f"sqlite:///{tmp_path / 'ac.db'}", tmp_path, entity="host",
                  actions=[{"command": [str(script)], "when": {"severity": "critical", "entity": "~web.*"},
                            "timeout": "5s", "rate_limit": 1}])
    r.process(scored([True, True, True], p=1e-6), inputs={"host": ["web-1", "db-1", "web-2"]})
    Deliverer(r).run_once()
    # db-1 does not match; of web-1 and web-2 (sent in parallel) one runs, the other is over the rate limit
    assert json.loads(got.read_text())["entity"] in ("web-1", "web-2")
    runs = {e["action"]: e for e in r.store.audit() if e["action"] in ("action", "action-skipped")}
    assert sorted(runs) == ["action", "action-skipped"]
    assert runs["action"]["detail"]["exit_code"] == 3 and "restarted" in runs["action"]["detail"]["output_tail"]
    assert runs["action-skipped"]["detail"]["outcome"] == "rate-limited"
    assert r.store.list_silences(active_at=r.clock()) == []  # the silence while it ran is gone
    r.close()


def test_an_action_times_out_and_a_dry_run_runs_nothing(tmp_path):
    mark = tmp_path / "ran"
    script = _script(tmp_path, f"touch {mark}\nsleep 5\n")
    r = responder(f"sqlite:///{tmp_path / 'at.db'}", tmp_path, entity="host",
                  actions=[{"command": [str(script)], "timeout": "300ms", "name": "slow"},
                           {"command": [str(script)], "dry_run": True, "name": "dry"}])
    r.process(scored([True]), inputs={"host": ["a"]})
    Deliverer(r).run_once()
    by_name = {e["comment"]: e["detail"] for e in r.store.audit() if e["action"] == "action"}
    assert by_name["slow"]["outcome"] == "timeout" and by_name["slow"]["seconds"] < 3
    assert by_name["dry"]["outcome"] == "dry-run" and by_name["dry"]["command"] == [str(script)]
    r.close()


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Responding to anomalies") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (responding)", "exec"), {})
    out = capsys.readouterr().out
    assert "alerts in 3 incidents" in out and len(lines(tmp_path / "alerts.jsonl")) == 3


def test_a_writer_and_a_deliverer_share_a_sqlite_store(tmp_path):
    # two connections that read, then write: with SQLite's default deferred transactions one of them fails
    # with "database is locked" when the other commits in between; here both finish, nothing is lost
    import threading

    url = f"sqlite:///{tmp_path / 'c.db'}"
    writer, sender = responder(url, tmp_path), responder(url, tmp_path)
    stop, errors = threading.Event(), []

    def deliver() -> None:
        d = Deliverer(sender)
        try:
            while not stop.is_set():
                d.run_once()
        except Exception as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=deliver)
    t.start()
    try:
        for k in range(20):
            writer.process(scored([True] * 20), entity=[f"h{k}-{i}" for i in range(20)], source=str(k))
    finally:
        stop.set()
        t.join()
    Deliverer(sender).drain(timeout=30)
    assert errors == [] and writer.store.outbox_depth() == 0
    sent = {a["id"] for line in lines(tmp_path / "out.jsonl") for a in line["alerts"]}
    assert len(sent) == 400 == len(writer.store.list_alerts(limit=None))
    writer.close()
    sender.close()
