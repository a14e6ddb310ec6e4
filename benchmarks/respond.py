"""Anomaly response under stress: outbox write rate, alert storms, flapping and crashes.

- chaos: 1,000 alert-producing rows, a loopback webhook receiver that fails 50 % of requests, the deliverer
  process killed with SIGKILL at random 50 times and restarted; checks that every stored alert reached the
  receiver, that every delivery of one notification carried its one Idempotency-Key, and that no alert is
  stored twice (the rows are processed twice). On SQLite and on a PostgreSQL server started for the run.
- storm: 500 flags of one cause (50 hosts) within a minute → notifications; a flapping series (4 h around
  the threshold) → open/close pairs per suppress window.
- outbox: alert writes per second on SQLite, batched (each batch one transaction with its outbox rows),
  against a bare executemany of the same alert rows in the same process (the ratio is what the loaded,
  shared machine cannot blur).

    python benchmarks/respond.py [chaos|storm|outbox|all] [--kills 50] [--rows 1000] [--no-postgres]

Results are printed as Markdown; RESULTS.md holds the committed ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from anomalia.respond import Deliverer, Responder
from anomalia.results import Contributions, ScoredRows

HERE = Path(__file__).resolve().parent
T0 = 1_800_000_000.0


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()}-core {platform.machine()} CPU, Python {platform.python_version()}, load {load:.1f}"


def rows(n: int, *, model: str = "bench", offset: int = 0, seconds: np.ndarray | None = None) -> ScoredRows:
    c = Contributions(
        ("a", "b", "c"),
        np.tile(np.array([[0, 1, 2]], np.int32), (n, 1)),
        np.tile(np.array([[0.6, 0.3, 0.1]], np.float32), (n, 1)),
    )
    return ScoredRows(
        score=np.linspace(5, 9, n),
        p_value=np.full(n, 1e-5),
        is_anomaly=np.ones(n, bool),
        row=np.arange(offset, offset + n),
        time=None if seconds is None else ((T0 + seconds) * 1000).astype("datetime64[ms]"),
        contributions=c,
        model_name=model,
        model_version="1",
    )


# ------------------------------------------------------------------------------------------------ receiver
class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A deliverer killed in the middle of a request leaves a broken one: no delivery, nothing to print."""


class Receiver:
    """A loopback webhook that fails ``fail_rate`` of requests (seeded) and records every success."""

    def __init__(self, fail_rate: float, seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.ok: list[tuple[str, str, list[str]]] = []  # (Idempotency-Key, body id, alert ids)
        self.failed = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if body.get("version") == "4":  # the Alertmanager webhook format
                    ident, ids = body["groupKey"], [a["annotations"]["alert_id"] for a in body["alerts"]]
                else:
                    ident, ids = body["id"], [a["id"] for a in body["alerts"]]
                with me.lock:
                    fail = me.rng.random() < fail_rate
                    if fail:
                        me.failed += 1
                    else:
                        me.ok.append((self.headers.get("Idempotency-Key") or "", ident, ids))
                self.send_response(503 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------------ chaos
def chaos_config(store: str, url: str) -> dict[str, Any]:
    return {
        "store": store,
        "incidents": {"group_by": ["entity"], "group_wait": 0},
        "sinks": [{"webhook": url, "name": "hook", "timeout": "2s"}],
        "delivery": {
            "max_attempts": 1000,
            "max_age": "1d",
            "backoff": {"base": "10ms", "cap": "200ms"},
            "lease": "1s",
            "breaker": {"failures": 5, "cooldown": "100ms"},
            "batch": 50,
        },
    }


def deliver_child(config_path: str) -> None:
    """The deliverer process the chaos run kills: says ``ready`` once the store is open, then delivers."""
    import logging

    logging.basicConfig(level=logging.ERROR)  # half of the requests fail on purpose: no warning per failure
    cfg = json.loads(Path(config_path).read_text())
    r = Responder(cfg)
    d = Deliverer(r)
    signal.signal(signal.SIGTERM, lambda *_: d.stop())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    d.run(poll=0.02)
    r.close()


def chaos(store: str, n_rows: int, kills: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    rec = Receiver(0.5, seed)
    cfg = chaos_config(store, rec.url)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "cfg.json"
        cfg_path.write_text(json.dumps(cfg))
        r = Responder(cfg)
        entities = [f"host-{i}" for i in range(n_rows)]
        first = r.process(rows(n_rows), entity=entities, source="chaos")
        again = r.process(rows(n_rows), entity=entities, source="chaos")  # the same rows: stored once
        n_notes = first.notifications

        def start() -> subprocess.Popen[str]:
            p = subprocess.Popen(
                [sys.executable, __file__, "_deliver", str(cfg_path)], stdout=subprocess.PIPE, text=True
            )
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            return p

        t = time.perf_counter()
        killed_with_work_left = 0
        for _ in range(kills):
            p = start()
            time.sleep(rng.uniform(0.02, 0.4))
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            killed_with_work_left += r.store.outbox_depth() > 0
        p = start()
        end = time.monotonic() + 600
        while r.store.outbox_depth() and time.monotonic() < end:
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        seconds = time.perf_counter() - t
        alerts = r.store.list_alerts(limit=None)
        notes = r.store.list_notifications()
        rec.stop()
        r.close()
    delivered_alerts = {a for _, _, ids in rec.ok for a in ids}
    keys_ok = all(k == body_id for k, body_id, _ in rec.ok)
    by_key: dict[str, set[tuple[str, ...]]] = {}
    for k, _, ids in rec.ok:
        by_key.setdefault(k, set()).add(tuple(sorted(ids)))
    return {
        "store": store.split(":", 1)[0].split("+")[0],
        "rows": n_rows,
        "alerts stored": len(alerts),
        "stored twice": len(alerts) - len({(a.fingerprint, a.row_key) for a in alerts}) + (len(again.alerts)),
        "notifications": n_notes,
        "kills": kills,
        "kills with work left": killed_with_work_left,
        "requests failed (503)": rec.failed,
        "deliveries ok": len(rec.ok),
        "duplicate deliveries": len(rec.ok) - len(by_key),
        "alerts never received": len({a.id for a in alerts} - delivered_alerts),
        "one key per notification": keys_ok
        and all(len(v) == 1 for v in by_key.values())
        and set(by_key) == {n.id for n in notes},
        "delivered / dead": f"{sum(n.status == 'delivered' for n in notes)} / {sum(n.status == 'dead' for n in notes)}",
        "seconds": round(seconds, 1),
    }


# ------------------------------------------------------------------------------------------------ storm
class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def storm(tmp: Path) -> list[dict[str, Any]]:
    out = []
    rec = Receiver(0.0)
    clock = Clock()
    r = Responder(
        {
            "store": f"sqlite:///{tmp / 'storm.db'}",
            "incidents": {"group_by": ["model"], "group_wait": "30s", "group_interval": "5m", "gap": "10m"},
            "sinks": [{"webhook": rec.url, "format": "alertmanager"}],
        },
        clock=clock,
    )
    d = Deliverer(r)
    hosts = [f"web-{i}" for i in range(50)]
    for k in range(10):  # 500 flags within 60 s in 10 batches, the deliverer running every 6 s
        sec = 6 * k + np.arange(50) * 0.1
        r.process(rows(50, offset=50 * k, seconds=sec), entity=hosts)
        clock.t += 6
        d.run_once()
    clock.t += 300
    d.run_once()
    incidents = r.store.list_incidents()
    received = {a for _, _, ids in rec.ok for a in ids}
    firing = [n for n in r.store.list_notifications() if n.kind == "firing"]
    out.append(
        {
            "case": "500 flags of one cause, 50 hosts, 60 s (group_by [model], group_wait 30s, group_interval 5m)",
            "incidents": len(incidents),
            "firing notifications": len(firing),
            "received": len(rec.ok),
            "incidents missed": len({i.first_alert_id for i in incidents} - received),
            "alerts received": len(received),
            "bar": "<= 5 notifications, no incident missed",
        }
    )
    rec.stop()
    r.close()
    # one host, 500 flags in a minute: one incident, one notification
    rec = Receiver(0.0)
    clock = Clock()
    r = Responder(
        {
            "store": f"sqlite:///{tmp / 'storm1.db'}",
            "incidents": {"group_wait": "30s", "gap": "10m"},
            "sinks": [{"webhook": rec.url}],
        },
        clock=clock,
    )
    d = Deliverer(r)
    for k in range(10):
        r.process(rows(50, offset=50 * k, seconds=6 * k + np.arange(50) * 0.1), entity=["db-1"] * 50)
        clock.t += 6
        d.run_once()
    clock.t += 300
    d.run_once()
    incidents = r.store.list_incidents()
    received = {a for _, _, ids in rec.ok for a in ids}
    out.append(
        {
            "case": "500 flags of one host within 60 s (group_wait 30s)",
            "incidents": len(incidents),
            "firing notifications": sum(n.kind == "firing" for n in r.store.list_notifications()),
            "received": len(rec.ok),
            "incidents missed": len({i.first_alert_id for i in incidents} - received),
            "alerts received": len(received),
            "bar": "<= 5 notifications, no incident missed",
        }
    )
    rec.stop()
    r.close()
    # flapping: one series around the threshold, flagged every other minute for 4 hours, one row a minute
    clock = Clock()
    r = Responder(
        {
            "store": f"sqlite:///{tmp / 'flap.db'}",
            "incidents": {"group_wait": 0},
            "flap": {"open": "1 of 1", "close": "1 of 1", "suppress": "30m"},
            "sinks": [{"jsonl": str(tmp / "flap.jsonl")}],
        },
        clock=clock,
    )
    d = Deliverer(r)
    sent: list[tuple[float, str]] = []
    for m in range(240):
        s = rows(1, offset=m, seconds=np.array([m * 60.0]))
        s.is_anomaly = np.array([m % 2 == 0])
        clock.t = T0 + m * 60
        r.process(s)
        before = {n.id for n in r.store.list_notifications(status="delivered")}
        d.run_once()
        sent += [(clock.t, n.kind) for n in r.store.list_notifications(status="delivered") if n.id not in before]
    windows: dict[int, list[str]] = {}
    for when, kind in sent:
        windows.setdefault(int((when - T0) // 1800), []).append(kind)
    out.append(
        {
            "case": "flapping 4 h, flagged every other minute (open 1 of 1, close 1 of 1, suppress 30m)",
            "incidents": len(r.store.list_incidents()),
            "firing notifications": sum(k == "firing" for _, k in sent),
            "resolve notifications": sum(k == "resolved" for _, k in sent),
            "most opens in one 30 min window": max((w.count("firing") for w in windows.values()), default=0),
            "most resolves in one 30 min window": max((w.count("resolved") for w in windows.values()), default=0),
            "naive (a pair per flip)": 120,
            "bar": "<= 1 open/close pair per window",
        }
    )
    r.close()
    return out


# ------------------------------------------------------------------------------------------------ outbox
def outbox(tmp: Path, batches: int = 10, batch: int = 2000, repeats: int = 3) -> dict[str, Any]:
    import sqlite3

    best_resp, best_raw = [], []
    for rep in range(repeats):  # alternate the two, so that load on the shared machine hits both alike
        r = Responder(
            {
                "store": f"sqlite:///{tmp / f'outbox{rep}.db'}",
                "entity": None,
                "incidents": {"group_by": ["entity"], "group_wait": "30s"},
                "sinks": [{"jsonl": str(tmp / "o.jsonl")}, {"webhook": "http://127.0.0.1:9/x"}],
            }
        )
        hosts = [f"h{i % 100}" for i in range(batch)]
        t = time.perf_counter()
        n = 0
        for k in range(batches):
            res = r.process(rows(batch, offset=k * batch), entity=hosts, source="bench")
            n += len(res.alerts)
        best_resp.append(n / (time.perf_counter() - t))
        depth = r.store.outbox_depth()
        r.close()
        # baseline: the same alert rows (JSON columns as text) by executemany, one transaction per batch
        con = sqlite3.connect(tmp / f"raw{rep}.db")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(
            "CREATE TABLE a (id TEXT PRIMARY KEY, fp TEXT, rk TEXT, score REAL, p REAL, summary TEXT, "
            "contributions TEXT, inputs TEXT, UNIQUE(fp, rk))"
        )
        t = time.perf_counter()
        for k in range(batches):
            data = [
                (
                    f"{k}-{i}",
                    f"fp{i % 100}",
                    f"r{k * batch + i}",
                    5.0,
                    1e-5,
                    "bench: critical anomaly",
                    json.dumps([{"name": "a", "share": 0.6}]),
                    "{}",
                )
                for i in range(batch)
            ]
            with con:
                con.executemany("INSERT INTO a VALUES (?,?,?,?,?,?,?,?)", data)
        best_raw.append(batches * batch / (time.perf_counter() - t))
        con.close()
    resp, raw = max(best_resp), max(best_raw)
    return {
        "alerts": batches * batch,
        "batch": batch,
        "alert writes/s (Responder.process)": round(resp),
        "bare executemany rows/s": round(raw),
        "ratio": round(resp / raw, 3),
        "outbox rows pending": depth,
        "bar": ">= 2,000/s",
    }


def table(rows_: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for r in rows_:
        keys += [k for k in r if k not in keys]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows_]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_deliver":
        deliver_child(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="all", choices=["chaos", "storm", "outbox", "all"])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        if args.what in ("outbox", "all"):
            print("\n**Outbox write rate (SQLite, batched)**\n")
            print(table([outbox(tmp)]))
        if args.what in ("storm", "all"):
            print("\n**Storm and flapping**\n")
            print(table(storm(tmp)))
        if args.what in ("chaos", "all"):
            results = [chaos(f"sqlite:///{tmp / 'chaos.db'}", args.rows, args.kills)]
            if not args.no_postgres:
                sys.path.insert(0, str(HERE.parent / "tests"))
                from postgres_server import PostgresServer

                pg = PostgresServer()
                try:
                    results.append(chaos(pg.create_database(), args.rows, args.kills, seed=1))
                finally:
                    pg.stop()
            print("\n**Chaos: receiver failing 50 %, deliverer killed -9 at random**\n")
            print(table(results))


if __name__ == "__main__":
    main()
