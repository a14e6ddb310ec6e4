"""The service under a real Uvicorn server on a loopback port, with the response engine: ingest → alert →
feedback in the store, server-sent events within a second, a chunked body refused with 413, and a short
schemathesis run against the OpenAPI schema that must find no 500."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("sqlalchemy", reason="the respond extra (sqlalchemy) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from anomalia.respond import Responder  # noqa: E402
from anomalia.serve import ServiceSettings, create_app  # noqa: E402

from service_client import RECORD, LiveServer, points, series_frame, shared_models  # noqa: E402


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-live")
    models = shared_models(tmp_path_factory)
    table, series = models["table"], models["series"]
    responder = Responder({"store": f"sqlite:///{folder / 'alerts.db'}", "incidents": {"group_wait": 0},
                           "sinks": [{"jsonl": str(folder / "alerts.jsonl")}]})
    app = create_app([table, series], responder,
                     settings=ServiceSettings(state_dir=folder / "state", max_body=1 << 20))
    server = LiveServer(app)
    server.folder = folder
    yield server, responder
    server.stop()
    responder.close()


def server_folder(live):
    return live[0].folder


def spiky(seed: int):
    """An hour of points up to now (the response engine resolves incidents whose last flag is older than its
    gap), with a spike 20 minutes ago."""
    import pandas as pd

    frame = series_frame(60, seed=seed)
    start = pd.Timestamp.now("UTC").tz_localize(None).floor("min") - pd.Timedelta("59min")
    frame["time"] = frame["time"] - frame["time"].iloc[0] + start
    frame.loc[40:43, "cpu"] += 6.0
    return frame


def test_ingest_raises_alerts_that_feedback_acknowledges(live):
    server, responder = live
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/v1/models/series/ingest/web-1", json={"points": points(spiky(1))})
        assert r.status_code == 200, r.text
        ids = r.json()["alerts"]
        assert ids, "the spike raised alerts"
        listed = c.get("/v1/alerts", params={"entity": "web-1"}).json()["alerts"]
        assert {a["id"] for a in listed} >= set(ids)
        assert all(a["entity"] == "web-1" and a["model"] == "series" for a in listed)
        assert c.get("/v1/alerts", params={"severity": "nothing-such"}).json()["alerts"] == []
        assert c.get("/v1/alerts", params={"since": "not a time"}).status_code == 422
        incidents = c.get("/v1/incidents", params={"entity": "web-1"}).json()["incidents"]
        assert incidents and incidents[0]["entity"] == "web-1"
        one = c.get(f"/v1/alerts/{ids[0]}").json()
        assert one["id"] == ids[0] and one["status"] == "firing"
        assert c.get("/v1/alerts/does-not-exist").status_code == 404
        assert c.post("/v1/alerts/does-not-exist/ack").status_code == 404
        acked = c.post(f"/v1/alerts/{ids[0]}/ack", json={"who": "alice", "comment": "on it"})
        assert acked.status_code == 200 and acked.json()["alert"]["status"] == "acknowledged"
        assert responder.store.get_alert(ids[0]).status == "acknowledged"
        done = c.post(f"/v1/alerts/{ids[0]}/resolve", json={"who": "alice"})
        assert done.status_code == 200 and responder.store.get_alert(ids[0]).status == "resolved"
        jsonl = server_folder(live) / "alerts.jsonl"
        end = time.time() + 10
        while time.time() < end and not (jsonl.exists() and ids[0] in jsonl.read_text()):
            time.sleep(0.1)
        assert ids[0] in jsonl.read_text()  # the service drains the outbox into the sinks
        metrics = c.get("/metrics").text
        assert "anomalia_alerts_total" in metrics and "anomalia_outbox_depth" in metrics
        assert 'anomalia_flags_total{model="series"' in metrics


def test_events_arrive_within_a_second(live):
    server, _ = live
    got: list[tuple[float, str, dict]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c, c.stream("GET", "/v1/events") as r:
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                    if kind == "hello":
                        ready.set()
                elif line.startswith("data: ") and kind not in (None, "hello"):
                    got.append((time.perf_counter(), kind, json.loads(line[6:])))
                    if {k for _, k, _ in got} >= {"points", "alerts"}:
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(10)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/v1/models/series/ingest/db-1", json={"points": points(spiky(2))}).status_code == 200
    answered = time.perf_counter()  # the events are published before the answer goes out
    t.join(10)
    kinds = {k: (at - answered, d) for at, k, d in reversed(got)}
    assert "points" in kinds and "alerts" in kinds, got
    assert kinds["points"][1]["key"] == "db-1" and kinds["alerts"][1]["alerts"][0]["entity"] == "db-1"
    assert max(delay for delay, _ in kinds.values()) < 1.0


def test_chunked_body_over_the_limit_is_refused(live):
    server, _ = live

    def chunks():
        for _ in range(64):
            yield b" " * 65536  # 4 MB in all, without a Content-Length

    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/v1/models/table/score", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit of 1,048,576 bytes" in r.json()["error"]
        big = c.post("/v1/models/table/score", content=b" " * (2 << 20), headers={"content-type": "application/json"})
        assert big.status_code == 413
        ok = c.post("/v1/models/table/score", json={"records": [RECORD]})  # the server carries on
        assert ok.status_code == 200


def test_schemathesis_finds_no_server_error(live):
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
    from hypothesis import HealthCheck, given, settings

    server, _ = live
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    seen = 0
    for op in schema.get_all_operations():
        operation = op.ok()
        if operation.path == "/v1/events":  # an endless stream by design
            continue

        strategy = operation.as_strategy()

        @settings(max_examples=4, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  derandomize=True)
        @given(case=strategy)
        def check(case) -> None:
            nonlocal seen
            response = case.call(base_url=server.url, timeout=10)
            seen += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        check()
    assert seen > 40
    assert failures == []
