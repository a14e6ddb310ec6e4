"""Stream benchmark: `anomalia watch` throughput, latency, chaos, many keys and level shifts.

    .venv/bin/python benchmarks/stream.py throughput   # records/s from Redis: tabular AE and a univariate series
    .venv/bin/python benchmarks/stream.py latency      # p99 message -> committed alert at 1,000 records/s
    .venv/bin/python benchmarks/stream.py chaos --kills 200 --messages 100000
    .venv/bin/python benchmarks/stream.py keys --keys 100000
    .venv/bin/python benchmarks/stream.py shift        # level shifts (NAB, SMD), protect / rebaseline / River
    .venv/bin/python benchmarks/stream.py drift        # false drifts on stationary real series (SMD, NAB)
    .venv/bin/python benchmarks/stream.py profile      # where a watcher's time goes (wall and CPU per part)
    .venv/bin/python benchmarks/stream.py all

Each section starts its own redis-server (Debian's package) on a free loopback port in a temporary folder
(as the tests do) and prints a Markdown table. Speeds are also given as a ratio against a baseline run in
the same process (the model scoring the same records without Redis, state or commits), because the
machine is shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import anomalia as an
from _common import DATA, machine, markdown_table
from anomalia.model import Model
from anomalia.stream import Decider, Online, Watcher, open_output, open_source
from anomalia.stream.sources import Message, Source

from redis_server import RedisServer, start_redis

FEATURES = [f"f{i}" for i in range(20)]


def _stop(server: RedisServer) -> None:
    server.process.terminate()
    server.process.wait(10)


MIX = np.random.default_rng(123).normal(size=(5, 15))


def _rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """Correlated records: 5 factors and 15 mixtures of them, plus noise."""
    base = rng.normal(size=(n, 5))
    return np.hstack([base, base @ MIX]) + 0.1 * rng.normal(size=(n, 20))


def _tabular_model(folder: Path, seed: int = 0) -> Path:
    X = _rows(6000, np.random.default_rng(seed))
    det = an.AutoEncoder(epochs=5, random_state=seed, keep_rows=True).fit(pd.DataFrame(X, columns=FEATURES))
    Model(det, name="tabular").save(folder / "tabular")
    return folder / "tabular"


def _records(n: int, keys: int, seed: int = 1, anomalies: float = 0.0) -> tuple[list[dict[str, str]], np.ndarray]:
    rng = np.random.default_rng(seed)
    X = _rows(n, rng)
    inject = rng.random(n) < anomalies
    X[inject] += rng.normal(0, 6, size=(int(inject.sum()), 20))
    rows = [
        {**dict(zip(FEATURES, map(repr, x.tolist()), strict=True)), "host": f"h{i % keys}"} for i, x in enumerate(X)
    ]
    return rows, inject


def _fill(server: RedisServer, stream: str, rows: list[dict[str, str]]) -> None:
    r = server.client()
    for start in range(0, len(rows), 5000):
        pipe = r.pipeline(transaction=False)
        for row in rows[start : start + 5000]:
            pipe.xadd(stream, row)
        pipe.execute()


def _watch(model: Path, server: RedisServer, stream: str, state: Path | None, **kw: Any) -> tuple[float, Any]:
    src = open_source(server.url(stream=stream, group=kw.pop("group", "g")))
    w = Watcher(model, src, open_output(server.url(stream=f"{stream}.out")), state=state, key_field="host", **kw)
    t, cpu = time.perf_counter(), time.process_time()
    stats = w.run(idle_exit=0.5)
    took = time.perf_counter() - t - 0.5  # the idle wait at the end
    stats.cpu = time.process_time() - cpu  # the watcher process's CPU time, its threads included
    w.close()
    return took, stats


def _bare(score: Any, n: int) -> tuple[float, float]:
    """(records/s, records per CPU second) of a bare scoring loop."""
    t, cpu = time.perf_counter(), time.process_time()
    score()
    return n / (time.perf_counter() - t), n / (time.process_time() - cpu)


# ---------------------------------------------------------------------------------------------- throughput
def throughput(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="anomalia-stream-"))
    server = start_redis(tmp)
    try:
        model = _tabular_model(tmp)
        n = args.messages
        rows, _ = _records(n, keys=1000)
        m = Model.load(model)
        table = pd.DataFrame(rows)[FEATURES].astype(float)

        def bare_tab() -> None:
            for start in range(0, n, 256):
                m.score(table.iloc[start : start + 256], explain="none")

        _fill(server, "tab", rows)
        before = _bare(bare_tab, n)
        took, stats = _watch(model, server, "tab", tmp / "state-tab", batch=256)
        after = _bare(bare_tab, n)
        assert stats.messages == n and server.client().xlen("tab.out") == n
        tab, tab_cpu = n / took, n / stats.cpu
        base_tab, base_tab_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2

        t_axis = np.arange(n + 4000)
        wave = np.sin(2 * np.pi * t_axis / 48) + 0.1 * np.random.default_rng(2).normal(size=t_axis.size)
        det = an.WindowAutoEncoder(window=32, epochs=5, random_state=0).fit(pd.DataFrame({"v": wave[:4000]}))
        Model(det, name="series").save(tmp / "series")
        live = wave[4000:]
        series_model = Model.load(tmp / "series").detector

        def bare_ser() -> None:
            state = series_model.new_stream()
            for start in range(0, n, 256):
                _, state = series_model.score_stream(pd.DataFrame({"v": live[start : start + 256]}), state)

        _fill(server, "ser", [{"v": repr(float(v)), "host": "h0"} for v in live])
        before = _bare(bare_ser, n)
        took, stats = _watch(tmp / "series", server, "ser", tmp / "state-ser", batch=256)
        after = _bare(bare_ser, n)
        assert stats.messages == n
        ser, ser_cpu = n / took, n / stats.cpu
        base_ser, base_ser_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    finally:
        _stop(server)
    load = os.getloadavg()[0]
    rows_out = [
        ["tabular autoencoder, 20 features, 1,000 keys", n, f"{tab:,.0f}", f"{base_tab:,.0f}", f"{tab / base_tab:.2f}",
         f"{tab_cpu:,.0f}", f"{base_tab_cpu:,.0f}", "10,000", "yes" if tab >= 10_000 else "no"],
        ["window autoencoder, univariate series, 1 key", n, f"{ser:,.0f}", f"{base_ser:,.0f}", f"{ser / base_ser:.2f}",
         f"{ser_cpu:,.0f}", f"{base_ser_cpu:,.0f}", "20,000", "yes" if ser >= 20_000 else "no"],
    ]
    return "**Throughput from Redis** (batches of 256, state in SQLite, results to a Redis stream in the XACK's " \
        f"transaction; bare scoring: the same model on the same batches in the same process, run before and after " \
        f"the watcher; per CPU second: the process's CPU time, threads included, not redis-server's; load average " \
        f"{load:.1f})\n\n" + markdown_table(
            ["model", "messages", "watch records/s", "bare scoring records/s", "ratio", "watch records per CPU s",
             "bare records per CPU s", "bar", "reached"], rows_out)


# ---------------------------------------------------------------------------------------------- latency
def _produce(url_port: int, stream: str, n: int, rate: float, seed: int, anomalies: float) -> None:
    import redis

    r = redis.Redis(host="127.0.0.1", port=url_port, decode_responses=True)
    rows, _ = _records(n, keys=50, seed=seed, anomalies=anomalies)
    start = time.perf_counter()
    for i, row in enumerate(rows):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        r.xadd(stream, row)
    os._exit(0)


def _respond_config(tmp: Path) -> Path:
    path = tmp / "response.yaml"
    path.write_text(f"store: sqlite:///{tmp / 'alerts.db'}\nsinks:\n  - {{jsonl: {tmp / 'alerts.jsonl'}}}\n")
    return path


def latency(args: argparse.Namespace) -> str:
    from anomalia.stream.respond import load_responder

    tmp = Path(tempfile.mkdtemp(prefix="anomalia-stream-"))
    server = start_redis(tmp)
    try:
        model = _tabular_model(tmp)
        n, rate = args.latency_messages, 1000.0
        fork = multiprocessing.get_context("fork")
        producer = fork.Process(target=_produce, args=(server.port, "lat", n, rate, 3, 0.02))
        src = open_source(server.url(stream="lat", group="g", start="0"))
        w = Watcher(model, src, open_output(server.url(stream="lat.out")), state=tmp / "state", key_field="host",
                    batch=256, responder=load_responder(str(_respond_config(tmp))))
        producer.start()
        w.run(max_messages=n)
        w.close()
        producer.join()
        r = server.client()
        lat = []
        for out_id, fields in r.xrange("lat.out"):
            lat.append(int(out_id.split("-")[0]) - int(fields["id"].split("-")[0]))
        flagged = [
            int(out_id.split("-")[0]) - int(fields["id"].split("-")[0])
            for out_id, fields in r.xrange("lat.out") if fields["is_anomaly"] == "1"
        ]
    finally:
        _stop(server)
    a, f = np.asarray(lat, dtype=float), np.asarray(flagged, dtype=float)
    def row(name: str, x: np.ndarray) -> list[Any]:
        return [name, x.size, *(f"{np.quantile(x, q):.0f}" for q in (0.5, 0.9, 0.99)), f"{x.max():.0f}"]

    rows = [row("every message", a), row("flagged (alert committed)", f)]
    return (
        f"**Latency at {rate:,.0f} records/s** (message added -> its result in the output stream, written after the "
        "alert, the state and the offset were committed; Redis server clock, ms; --respond with a SQLite store)\n\n"
        + markdown_table(["messages", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows)
        + f"\n\nBar: p99 <= 250 ms: {'reached' if np.quantile(f if f.size else a, 0.99) <= 250 else 'not reached'}."
    )


# ---------------------------------------------------------------------------------------------- chaos
def _watch_child(model: Path, port: int, state: Path, config: Path | None) -> None:
    try:
        from anomalia.stream.respond import load_responder

        url = f"redis://127.0.0.1:{port}/0"
        responder = None if config is None else load_responder(str(config))
        w = Watcher(model, open_source(f"{url}?stream=chaos&group=g"), open_output(f"{url}?stream=chaos.out"),
                    state=state, key_field="host", batch=64, responder=responder)
        w.run(idle_exit=2.0)
        w.close()
    finally:
        os._exit(0)


def chaos(args: argparse.Namespace) -> str:
    from anomalia.stream.respond import load_responder

    tmp = Path(tempfile.mkdtemp(prefix="anomalia-stream-"))
    server = start_redis(tmp)
    fork = multiprocessing.get_context("fork")
    try:
        model = _tabular_model(tmp)
        n, kills_wanted = args.messages, args.kills
        rng = np.random.default_rng(0)
        life = (0.25, 0.9)
        rate = n / (kills_wanted * np.mean(life) * 0.9)  # messages keep flowing until about the last kill
        config = _respond_config(tmp)
        producer = fork.Process(target=_produce, args=(server.port, "chaos", n, rate, 4, 0.02))
        producer.start()
        kills = 0
        t0 = time.perf_counter()
        while kills < kills_wanted:
            proc = fork.Process(target=_watch_child, args=(model, server.port, tmp / "state", config))
            proc.start()
            time.sleep(rng.uniform(*life))
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.join()
        producer.join()
        proc = fork.Process(target=_watch_child, args=(model, server.port, tmp / "state", config))
        proc.start()
        proc.join(600)
        chaos_s = time.perf_counter() - t0
        r = server.client()
        out = r.xrange("chaos.out")
        ids = [f["id"] for _, f in out]
        got = {f["id"]: f for _, f in out}
        src_ids = [i for i, _ in r.xrange("chaos")]
        # the crash-free run: the same messages, another group, a fresh state
        ref = Watcher(model, open_source(server.url(stream="chaos", group="ref")),
                      open_output(server.url(stream="chaos.ref")), state=tmp / "ref", key_field="host", batch=64)
        ref.run(idle_exit=0.5)
        ref.close()
        want = {f["id"]: f for _, f in r.xrange("chaos.ref")}
        alerts = [a for a in load_responder(str(config)).store.list_alerts() if a.kind == "anomaly"]
    finally:
        _stop(server)
    lost = len(set(src_ids) - set(got))
    dup = len(ids) - len(set(ids))
    differ = sum(1 for i in src_ids if i in got and got[i] != want.get(i))
    flagged = sum(1 for f in got.values() if f["is_anomaly"] == "1")
    dup_alerts = len(alerts) - len({(a.fingerprint, a.row_key) for a in alerts})
    rows = [[n, kills, f"{chaos_s:.0f}", lost, dup, differ, flagged, len(alerts), dup_alerts]]
    return (
        "**Chaos** (random `kill -9` of the watcher process every 0.25-0.9 s while the messages flow, 2 % injected "
        "anomalies, --respond on SQLite; compared with a crash-free run on the same messages)\n\n"
        + markdown_table(["messages", "kill -9", "s", "lost", "written twice", "results differing",
                          "flagged", "anomaly alerts", "duplicate alerts"], rows)
    )


# ---------------------------------------------------------------------------------------------- many keys
class _ListSource(Source):
    name = "memory"

    def __init__(self, messages: list[Message]) -> None:
        self.messages, self.at = messages, 0

    def read(self, count: int, block_ms: int) -> list[Message]:
        out = self.messages[self.at : self.at + count]
        self.at += len(out)
        return out

    def position(self) -> str | None:
        return str(self.at)

    @property
    def exhausted(self) -> bool:
        return self.at >= len(self.messages)


def _keys_child(model: Path, messages: list[Message], state: Path, cap: int, conn: Any) -> None:
    import psutil

    try:
        proc = psutil.Process()
        Model.load(model)  # the model's own memory is not the keys'
        rss0 = proc.memory_info().rss
        w = Watcher(model, _ListSource(messages), None, state=state, key_field="host", batch=256, keys_in_memory=cap)
        t = time.perf_counter()
        stats = w.run()
        took = time.perf_counter() - t
        rss = proc.memory_info().rss - rss0
        w.close()
        conn.send((stats.messages, took, rss))
    finally:
        os._exit(0)


def keys(args: argparse.Namespace) -> str:
    from anomalia.stream.online import KeyState

    tmp = Path(tempfile.mkdtemp(prefix="anomalia-stream-"))
    model = _tabular_model(tmp)
    k = args.keys
    rows, _ = _records(2 * k, keys=k, seed=5)
    messages = [Message(str(i), r) for i, r in enumerate(rows)]
    fork = multiprocessing.get_context("fork")
    d = Decider(Online(), np.random.default_rng(0).normal(size=2000), None)
    full: KeyState = d.new_state()
    d.decide(full, np.random.default_rng(1).normal(size=1999))  # a key in steady state: full ring, drift window
    meta, blob = full.dumps()
    arrays = full.ring.nbytes + full.stand_in.nbytes + full.drift.nbytes
    out = []
    for cap in (k, k // 10):
        state = tmp / f"state-{cap}"
        here, there = fork.Pipe()
        child = fork.Process(target=_keys_child, args=(model, messages, state, cap, there))
        child.start()
        n, took, rss = here.recv()
        child.join()
        db = sum(p.stat().st_size for p in state.iterdir())
        t = time.perf_counter()  # restart: open the store, load the model, serve the first batch of old keys
        again = Watcher(model, _ListSource(messages[:256]), None, state=state, key_field="host", keys_in_memory=cap)
        again.run()
        restart = time.perf_counter() - t
        again.close()
        feed = tmp / "first.jsonl"
        feed.write_text("".join(json.dumps(m.record) + "\n" for m in messages[:256]))
        t = time.perf_counter()  # the same from a fresh process: imports, model, store, first batch
        cli = [sys.executable, "-c", "from anomalia.cli import main; main()"]
        subprocess.run([*cli, "watch", str(model), "--source", f"file:{feed}", "--state", str(state), "--key-field",
                        "host", "--keys-in-memory", str(cap), "--max-messages", "256"], check=True, capture_output=True)
        cold = time.perf_counter() - t
        out.append([f"{k:,}", f"{cap:,}", n, f"{n / took:,.0f}", f"{rss / min(k, cap) / 1024:.1f}",
                    f"{db / k / 1024:.2f}", f"{restart:.2f}", f"{cold:.2f}"])
    return (
        f"**{k:,} keys** (2 messages per key, tabular autoencoder, 20 features, batches of 256; memory measured "
        "in a fresh process per row)\n\n"
        + markdown_table(["keys", "in memory", "messages", "updates/s", "kB per key in memory (RSS)",
                          "kB per key in SQLite", "restart-to-serving s (warm)", "same, new process s"], out)
        + f"\n\nA key in steady state (full calibration window of 500, drift window of 200): {arrays / 1024:.1f} kB of "
        f"arrays in memory, {(len(meta) + len(blob)) / 1024:.1f} kB stored. Bar: restart-to-serving <= 5 s."
    )


# ---------------------------------------------------------------------------------------------- level shifts
def _river_flags(scores: np.ndarray, q: float, cal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """River's QuantileFilter with protection over StandardAbsoluteDeviation of our model's scores (its target
    y), warmed up like ours on the model's calibration scores: the detector first, then the filter's quantile
    (warming both at once leaves the first, huge, deviations in the quantile for good)."""
    from river import anomaly, stats

    sad = anomaly.StandardAbsoluteDeviation(sub_stat=stats.Mean())
    for s in cal:
        sad.learn_one(None, float(s))
    model = anomaly.QuantileFilter(sad, q=q, protect_anomaly_detector=True)
    for s in cal:
        model.learn_one(None, float(s))
    flags, thr = np.zeros(scores.size, bool), np.zeros(scores.size)
    for i, s in enumerate(scores):
        sc = model.score_one(None, float(s))
        flags[i] = model.classify(sc)
        thr[i] = model.quantile.get() or np.nan
        model.learn_one(None, float(s))
    return flags, thr


def _ours(scores: np.ndarray, cal: np.ndarray, mode: str, conf: dict[str, int]) -> tuple[np.ndarray, np.ndarray, int]:
    policy = "adapt" if mode == "rebaseline" else "alert"
    online = Online(adaptation=mode, drift_policy=policy, window=conf["W"], drift_window=conf["drift_window"])
    d = Decider(online, cal, None, drift_stride=conf["stride"])
    st = d.new_state()
    flags, thr = np.zeros(scores.size, bool), np.zeros(scores.size)
    for start in range(0, scores.size, 100):
        r = d.decide(st, scores[start : start + 100])
        flags[start : start + 100] = r.is_anomaly
        c = st.count
        thr[start : start + 100] = np.sort(st.ring[:c])[c - int(0.01 * c) - 1] if c >= 100 else np.nan
    return flags, thr, st.n_drifts


def _touched(inj: np.ndarray, span: int) -> np.ndarray:
    """Steps whose sample (the ``span`` steps ending there) holds an injected spike: a series detector's score
    at such a step measures the spike, so a flag there is a detection, not a false alarm."""
    c = np.r_[0, np.cumsum(inj)]
    t = np.arange(inj.size)
    return (c[t + 1] - c[np.maximum(t + 1 - span, 0)]) > 0


def _level_move(thr_a: np.ndarray, thr_b: np.ndarray) -> float:
    """How far run b's 0.99 level lies from run a's: the ratio of their means over the later half of the steps
    where both sets hold enough scores for the level (all such steps when none is in the later half)."""
    n = min(thr_a.size, thr_b.size)
    a, b = thr_a[:n], thr_b[:n]
    both = ~np.isnan(a) & ~np.isnan(b)
    later = both & (np.arange(n) >= n // 2)
    use = later if later.any() else both
    return abs(b[use].mean() / a[use].mean() - 1.0) if use.any() else float("nan")


def _absorb(scores: np.ndarray, cal: np.ndarray, conf: dict[str, int], shift_at: int, inj: np.ndarray,
            learn: Any, normal: np.ndarray) -> list[Any]:
    """absorb: protect serves through the shift; after one window of alerts the operator approves the next W
    points as new normal (the injected spikes among them included: nobody picked them out) and `absorb`
    learns them (partial_fit with replay, gate, new version); the promoted version serves from then on, its
    calibration restarting from its own held-out scores. The rates are counted from the promotion (t_a)."""
    W = conf["W"]
    online = Online(window=W, drift_window=conf["drift_window"])
    d = Decider(online, cal, None, drift_stride=conf["stride"])
    st = d.new_state()
    flags = np.zeros(scores.size, bool)
    for start in range(0, scores.size, 100):
        flags[start : start + 100] = d.decide(st, scores[start : start + 100]).is_anomaly
    first = shift_at + W - 1
    t_a = first + 1 + W
    promoted, from_a, new_cal = learn(first + 1, t_a)
    new_scores = from_a[W:]
    approved_spikes = inj[first + 1 : t_a]
    level = np.quantile(new_cal, 0.99)
    learned = f"{(from_a[:W][approved_spikes] > level).mean():.2f}" if approved_spikes.any() else "—"
    d2 = Decider(Online(window=W, drift_window=conf["drift_window"]), new_cal, None, drift_stride=conf["stride"])
    st2 = d2.new_state()
    for start in range(t_a, scores.size, 100):
        r = d2.decide(st2, new_scores[start - t_a : start - t_a + 100])
        flags[start : start + 100] = r.is_anomaly

    def far(a: int, b: int) -> str:
        sl = slice(t_a + a, min(t_a + b, scores.size))
        return f"{flags[sl][normal[sl]].mean():.4f}" if normal[sl].any() else "—"

    late = slice(t_a + 2 * W, scores.size)
    recall = f"{flags[late][inj[late]].mean():.2f}" if inj[late].any() else "—"
    return [st2.n_drifts, "promoted" if promoted else "gate refused", t_a - shift_at, far(0, W),
            far(W, 2 * W), far(2 * W, 10**9), recall, learned]


def _shift_case(name: str, before: np.ndarray, after: np.ndarray, spikes_after: np.ndarray, cal: np.ndarray,
                clean: np.ndarray, spiky: np.ndarray, rows: list[list[Any]], conf: dict[str, int],
                spiked: np.ndarray, learn: Any = None, absorbed: list[list[Any]] | None = None, span: int = 1,
                labelled: np.ndarray | None = None) -> None:
    """False-alarm rates count the steps whose sample holds no injected spike (``span`` steps per sample)
    and that lie outside the series' own labelled anomalies (``labelled``, from the shift on)."""
    W = conf["W"]
    scores = np.r_[before, after]
    shift_at = before.size
    inj = np.r_[np.zeros(before.size, bool), spikes_after]
    normal = ~_touched(inj, span)
    if labelled is not None:
        normal[shift_at:] &= ~labelled[: after.size]
    if learn is not None and absorbed is not None:
        absorbed.append([name, W, *_absorb(scores, cal, conf, shift_at, inj, learn, normal)])
    for method in ("protect", "rebaseline", "river"):
        if method == "river":
            flags, _ = _river_flags(scores, 0.99, cal)
            _, thr_clean = _river_flags(clean, 0.99, cal)
            flags_spiky, thr_spiky = _river_flags(spiky, 0.99, cal)
            drifts = "—"
        else:
            flags, _, drifts = _ours(scores, cal, method, conf)
            _, thr_clean, _ = _ours(clean, cal, method, conf)
            flags_spiky, thr_spiky, _ = _ours(spiky, cal, method, conf)
        def far(a: int, b: int, flags: np.ndarray = flags) -> float:
            sl = slice(shift_at + a, min(shift_at + b, scores.size))
            return float(flags[sl][normal[sl]].mean()) if normal[sl].any() else float("nan")

        late = slice(shift_at + 2 * W, scores.size)
        recall = float(flags[late][inj[late]].mean()) if inj[late].any() else float("nan")
        move = _level_move(thr_clean, thr_spiky)
        far_before = float(flags[W:shift_at][normal[W:shift_at]].mean())
        rows.append([name, W, method, drifts, f"{far_before:.4f}", f"{far(0, W):.3f}", f"{far(W, 2 * W):.3f}",
                     f"{far(2 * W, 10**9):.4f}", f"{recall:.2f}",
                     f"{100 * move:.1f} %" if move == move else "— (the set never held 100 scores)",
                     f"{flags_spiky[spiked].mean():.2f}"])


def _move(a: np.ndarray, b: np.ndarray, cal: np.ndarray, conf: dict[str, int]) -> float:
    """How far protect's 0.99 level on stream ``b`` lies from that on stream ``a``."""
    return _level_move(_ours(a, cal, "protect", conf)[1], _ours(b, cal, "protect", conf)[1])


def _smd_move_draws(det: Any, live: np.ndarray, std: np.ndarray, conf: dict[str, int], draws: int = 5) -> str:
    """The SMD threshold move over several spike draws, beside the move of the same rows simply left out:
    when every spike is flagged, what moves the level is which normal rows the set holds."""
    clean, cal = det.anomaly_score(live), det.calibrator_.scores
    rows = []
    for seed in range(draws):
        rng = np.random.default_rng(100 + seed)
        hit = rng.random(live.shape[0]) < 0.02
        spiky = live.copy()
        spiky[hit] += rng.choice([-1, 1], size=(int(hit.sum()), live.shape[1])) * 6 * std
        rows.append([seed, f"{100 * _move(clean, det.anomaly_score(spiky), cal, conf):.1f} %",
                     f"{100 * _move(clean, clean[~hit], cal, conf):.1f} %"])
    return markdown_table(["spike draw", "threshold move, 2 % spikes", "same rows left out, no spikes"], rows)


def shift(args: argparse.Namespace) -> str:
    rows: list[list[Any]] = []
    rng = np.random.default_rng(0)
    # SMD machine-1-6: a dense autoencoder per time step, fitted on the first half of the training part
    smd = np.load(DATA / "timeseries" / "smd" / "machine-1-6.npz")
    train = smd["train"].astype(np.float32)
    half = train.shape[0] // 2
    cols = [f"c{i}" for i in range(train.shape[1])]
    det = an.AutoEncoder(epochs=10, random_state=0, keep_rows=True).fit(pd.DataFrame(train[:half], columns=cols))
    tmp = Path(tempfile.mkdtemp(prefix="anomalia-stream-"))
    Model(det, name="smd").save(tmp / "smd")
    absorbed: list[list[Any]] = []
    live = train[half:].copy()
    cut = live.shape[0] // 3
    std = train[:half].std(axis=0) + 1e-3
    moved = np.argsort(-std)[:10]  # the ten most variable channels shift up by 3 of their std
    shifted = live.copy()
    shifted[cut:, moved] += 3.0 * std[moved]
    spikes = rng.random(live.shape[0] - cut) < 0.02
    k = int(spikes.sum())
    shifted[cut:][spikes] += rng.choice([-1, 1], size=(k, train.shape[1])) * 6 * std
    s = det.anomaly_score(shifted)
    clean = det.anomaly_score(live)
    spiky_rows = live.copy()
    spk = rng.random(live.shape[0]) < 0.02
    spiky_rows[spk] += rng.choice([-1, 1], size=(int(spk.sum()), train.shape[1])) * 6 * std

    def learn_smd(a: int, b: int) -> tuple[bool, np.ndarray, np.ndarray]:
        from anomalia.stream import absorb

        res = absorb(tmp / "smd", pd.DataFrame(shifted[a:b], columns=cols))
        served = Model.load(tmp / "smd").detector
        return res.promoted, served.anomaly_score(shifted[a:]), served.calibrator_.scores

    draws = _smd_move_draws(det, live, std, {"W": 500, "drift_window": 100, "stride": 10})
    _shift_case("SMD machine-1-6 (+3 std on 10 channels)", s[:cut], s[cut:], spikes, det.calibrator_.scores,
                clean, det.anomaly_score(spiky_rows), rows, {"W": 500, "drift_window": 100, "stride": 10},
                spk, learn_smd, absorbed)
    # NAB series whose level moves and stays (realAWSCloudwatch RDS CPU): the shift is the midpoint of the
    # series' first labelled window (NAB's anomaly point). cc0c53 stays at its new level to the end (its
    # second labelled window is left out of the rates); e47b3b shifts again at its second labelled window, so
    # its stream ends there. A window autoencoder is fitted on the steps before the stream starts.
    labels = json.loads((DATA / "timeseries" / "nab" / "labels" / "combined_windows.json").read_text())
    for series, fit_end, to_end in (("rds_cpu_utilization_cc0c53", 1500, True),
                                    ("rds_cpu_utilization_e47b3b", 600, False)):
        key = f"realAWSCloudwatch/{series}.csv"
        frame = pd.read_csv(DATA / "timeseries" / "nab" / "data" / key)
        times = pd.to_datetime(frame["timestamp"])
        windows = [(int(np.flatnonzero(times >= pd.Timestamp(a))[0]), int(np.flatnonzero(times <= pd.Timestamp(b))[-1]))
                   for a, b in labels[key]]
        jump = (windows[0][0] + windows[0][1]) // 2
        end = len(frame) if to_end else windows[1][0]
        v = frame["value"].to_numpy(dtype=np.float64)[:end]
        labelled = np.zeros(v.size, bool)  # NAB's own labelled windows after the shift: not false alarms
        for a, b in windows:
            labelled[max(a, jump) : b + 1] = a <= b
        det = an.WindowAutoEncoder(window=24, epochs=20, random_state=0, keep_rows=True).fit(
            pd.DataFrame({"v": v[:fit_end]}))
        Model(det, name=series).save(tmp / series)
        sd = v[:fit_end].std()  # spikes of 6 std of the regime they fall in (as on SMD): before / after the shift
        vv = v.copy()
        sp = np.zeros(v.size, bool)
        sp[jump:] = rng.random(v.size - jump) < 0.02
        vv[sp] += rng.choice([-1, 1], size=int(sp.sum())) * 6 * v[jump:].std()
        s, _ = det.score_stream(pd.DataFrame({"v": vv[fit_end:]}), det.stream_start_)
        s = np.asarray(s, dtype=np.float64)
        c0 = jump - fit_end
        cs, _ = det.score_stream(pd.DataFrame({"v": v[fit_end:jump]}), det.stream_start_)
        vspk = v[fit_end:jump].copy()
        m = rng.random(vspk.size) < 0.02
        vspk[m] += rng.choice([-1, 1], size=int(m.sum())) * 6 * sd
        ss, _ = det.score_stream(pd.DataFrame({"v": vspk}), det.stream_start_)

        def learn_nab(a: int, b: int, series: str = series, vv: np.ndarray = vv,
                      fit_end: int = fit_end) -> tuple[bool, np.ndarray, np.ndarray]:
            from anomalia.stream import absorb

            res = absorb(tmp / series, pd.DataFrame({"v": vv[fit_end + a : fit_end + b]}))
            served = Model.load(tmp / series).detector
            out, _ = served.score_stream(pd.DataFrame({"v": vv[fit_end:]}), served.stream_start_)
            return res.promoted, np.asarray(out, float)[a:], served.calibrator_.scores

        _shift_case(f"NAB {series}", s[:c0], s[c0:], sp[jump:], det.calibrator_.scores, np.asarray(cs, float),
                    np.asarray(ss, float), rows, {"W": 250, "drift_window": 100, "stride": 4}, m, learn_nab, absorbed,
                    span=det.span, labelled=labelled[jump:])
    return (
        "**Level shifts** (alpha = 0.01, calibration window W; drift test on 100 p-values at level 1e-3, "
        "thinned to every 10th step on SMD and every 4th on NAB; "
        "2 % injected spikes after the shift; FAR = flagged share of the steps whose sample (the detector's span) "
        "holds no injected spike and that lie outside NAB's labelled windows; "
        "River: `QuantileFilter(StandardAbsoluteDeviation, q=0.99, "
        "protect_anomaly_detector=True)` on the same scores)\n\n"
        + markdown_table(["series", "W", "method", "drifts", "FAR before", "FAR 0-W after", "FAR W-2W", "FAR after 2W",
                          "injected flagged after 2W", "threshold move, 2 % spikes", "spikes flagged there"], rows)
        + "\n\nBar: FAR after two windows within 2 alpha = 0.02; injected spikes still flagged; threshold move <= 5 %."
        + "\n\n**absorb** (protect through the shift; after one window of alerts the next W points, spikes "
        "included, approved as new normal and learned by `absorb` (partial_fit with replay of old normal rows, gate, "
        "new version); the promoted version then serves, its calibration restarting; rates counted from the "
        "promotion t_a)\n\n"
        + markdown_table(["series", "W", "drifts after t_a", "gate", "t_a - shift", "FAR 0-W after t_a", "FAR W-2W",
                          "FAR after 2W", "injected flagged after 2W",
                          "approved spikes above the new 0.99 level"], absorbed)
        + "\n\n**SMD threshold move over five spike draws** (machine-1-6 without the shift, protect, W = 500; "
        "beside it the move when the same 2 % of rows are left out of the stream and nothing is injected)\n\n"
        + draws
    )


# ---------------------------------------------------------------------------------------------- drift false alarms
def _drift_rate(scores: np.ndarray, cal: np.ndarray, stride: int, level: float, window: int,
                corrected: bool) -> tuple[int, int]:
    """(tests, drifts) of the watcher's drift test over a stationary stream of scores."""
    import anomalia.stream.online as online

    keep = online.effective_size
    if not corrected:  # the plain KS test: every window of p-values taken as independent
        online.effective_size = lambda p: int(np.size(p))
    try:
        d = Decider(Online(drift_window=window, drift_level=level), cal, None, drift_stride=stride)
        st = d.new_state()
        for start in range(0, scores.size, 256):
            d.decide(st, scores[start : start + 256])
    finally:
        online.effective_size = keep
    return (scores.size // stride) // window, st.n_drifts


def drift(args: argparse.Namespace) -> str:
    """False drifts on stationary real series: SMD machines' training parts (a dense autoencoder per time step,
    fitted on the first half, scoring the second) and NAB series' stretches before their first labelled
    anomaly window (a window autoencoder fitted on the first 1,000 steps)."""
    streams: list[tuple[str, np.ndarray, np.ndarray, int]] = []
    for path in sorted((DATA / "timeseries" / "smd").glob("machine-*.npz")):
        train = np.load(path)["train"].astype(np.float32)
        half = train.shape[0] // 2
        cols = [f"c{i}" for i in range(train.shape[1])]
        det = an.AutoEncoder(epochs=5, random_state=0).fit(pd.DataFrame(train[:half], columns=cols))
        streams.append((f"SMD {path.stem}", det.anomaly_score(train[half:]), det.calibrator_.scores, 1))
    windows = json.loads((DATA / "timeseries" / "nab" / "labels" / "combined_windows.json").read_text())
    for name in sorted(windows):
        frame = pd.read_csv(DATA / "timeseries" / "nab" / "data" / name)
        stamps = pd.to_datetime(frame["timestamp"])
        end = (stamps < pd.Timestamp(windows[name][0][0])).sum() if windows[name] else len(frame)
        v = frame["value"].to_numpy(dtype=np.float64)[:end]
        if v.size < 3000 or np.std(v[:1000]) == 0 or not name.startswith(("real", "artificialNo")):
            continue
        det = an.WindowAutoEncoder(window=24, epochs=10, random_state=0).fit(pd.DataFrame({"v": v[:1000]}))
        sc, _ = det.score_stream(pd.DataFrame({"v": v[1000:]}), det.stream_start_)
        streams.append((f"NAB {name.split('/')[-1][:-4]}", np.asarray(sc, float), det.calibrator_.scores, det.span))
    rows = []
    for label, group in (("SMD", [x for x in streams if x[0].startswith("SMD")]),
                         ("NAB", [x for x in streams if x[0].startswith("NAB")])):
        for level in (1e-3, 0.05):
            for stride_rule in ("1", "span"):
                if label == "SMD" and stride_rule == "span":
                    continue
                for corrected in (False, True):
                    tests = fired = points = 0
                    for _, sc, cal, span in group:
                        t, f = _drift_rate(sc, cal, span if stride_rule == "span" else 1, level, 200 if
                                           stride_rule == "1" else 50, corrected)
                        tests, fired, points = tests + t, fired + f, points + sc.size
                    rows.append([f"{label} ({len(group)} series, {points:,} points)", level,
                                 "every point" if stride_rule == "1" else "every span-th point",
                                 200 if stride_rule == "1" else 50,
                                 "effective size" if corrected else "plain KS", tests, fired,
                                 f"{fired / max(tests, 1):.3f}"])
    return (
        "**Drift test on stationary real series** (false drifts per test; protect, alpha = 0.01, calibration "
        "window 500; the plain KS test takes the window's p-values as independent, the corrected one runs at "
        "the combined effective sample size of the window and the calibration set)\n\n"
        + markdown_table(["streams", "level", "p-values tested", "window", "test", "tests", "drifts",
                          "false drifts per test"], rows)
        + "\n\nBar: false drifts per test near the level."
    )


# ---------------------------------------------------------------------------------------------- profile
def profile(args: argparse.Namespace) -> str:
    """Where a watcher's time goes: wall and CPU time (of the calling thread) in its parts, on the tabular
    throughput run. The parts nest (scoring holds the table, the model and the decisions; the commit holds
    the key states' encoding), so the shares do not add up to 100 %."""
    import collections

    from anomalia.stream import online, runner, sources, store

    wall: collections.Counter[str] = collections.Counter()
    cpu: collections.Counter[str] = collections.Counter()
    patched = []

    def wrap(cls: Any, name: str, label: str) -> None:
        f = getattr(cls, name)
        patched.append((cls, name, f))

        def timed(*a: Any, **k: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return f(*a, **k)
            finally:
                wall[label] += time.perf_counter() - t
                cpu[label] += time.thread_time() - c

        setattr(cls, name, timed)

    tmp = Path(tempfile.mkdtemp(prefix="anomalia-stream-"))
    server = start_redis(tmp)
    try:
        model = _tabular_model(tmp)
        n = args.messages
        rows, _ = _records(n, keys=1000)
        _fill(server, "tab", rows)
        for cls, name, label in ((runner.Watcher, "_score", "scoring (table, model, decisions)"),
                                 (runner.Watcher, "_table", "records -> table"),
                                 (runner.Watcher, "_model_scores", "model forward (Model.score)"),
                                 (online.Decider, "decide_many", "decisions"),
                                 (store.StateStore, "commit", "checkpoint commit (SQLite)"),
                                 (online.KeyState, "dumps", "key state encoding"),
                                 (sources.RedisSource, "read", "read (waiting for the prefetched batch)"),
                                 (sources.RedisSource, "deliver", "XACK + results (Lua script)")):
            wrap(cls, name, label)
        c0 = time.process_time()
        took, stats = _watch(model, server, "tab", tmp / "state", batch=256)
        total_cpu = time.process_time() - c0
    finally:
        for cls, name, f in patched:
            setattr(cls, name, f)
        _stop(server)
    out = [[k, f"{wall[k]:.2f}", f"{100 * wall[k] / took:.0f} %", f"{cpu[k]:.2f}", f"{100 * cpu[k] / total_cpu:.0f} %"]
           for k, _ in wall.most_common()]
    return (
        f"**Where the time goes** (tabular autoencoder, 1,000 keys, {n:,} messages from Redis, batches of 256: "
        f"{n / took:,.0f} records/s, {n / total_cpu:,.0f} per CPU second of the process, "
        f"{stats.checkpoints} checkpoints; load average {os.getloadavg()[0]:.1f})\n\n"
        + markdown_table(["part", "wall s", "share of wall", "CPU s (main thread)", "share of process CPU"], out)
    )


SECTIONS = {"throughput": throughput, "latency": latency, "chaos": chaos, "keys": keys, "shift": shift, "drift": drift,
            "profile": profile}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=[*SECTIONS, "all"])
    p.add_argument("--messages", type=int, default=100_000, help="throughput / chaos messages")
    p.add_argument("--latency-messages", type=int, default=10_000)
    p.add_argument("--kills", type=int, default=200)
    p.add_argument("--keys", type=int, default=100_000)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"Machine: {machine()} (shared with other jobs)\n")
    for name in SECTIONS if args.section == "all" else [args.section]:
        print(SECTIONS[name](args), end="\n\n", flush=True)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
