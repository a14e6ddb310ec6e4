"""The scoring service under load: `anomalia serve` in one process, a load generator in a second one, on
loopback; every phase bounded in requests and seconds.

Phases (each prints one JSON line; ``--phases`` picks some):

- ``single``: single-record JSON scoring at fixed rates (open loop: request i is due at t0 + i/rate; its
  latency counts from when it was due, so a stalled server cannot hide queueing), then closed loop with
  many connections to find the saturating rate; p50 / p99 and the micro-batch sizes (from /metrics) of each;
- ``batch``: 10,000-record bodies as Arrow IPC and as JSON, rows/s (answers in JSON, and in Arrow);
- ``reload``: 500 requests/s while the model folder is rewritten and reloaded 10 times: failed requests;
- ``crash``: a series model; 8 keys ingested batch by batch, the server killed with SIGKILL at random
  moments and restarted; the scores must equal those of a run without crashes;
- ``bigbody``: a 100 MB body (with Content-Length, then chunked without it) must get 413 while the server's
  RSS grows by < 50 MB.

The load generator is a raw asyncio HTTP/1.1 keep-alive client (uvloop when present): one prepared request,
many connections, no HTTP library in the hot path.

Usage::

    .venv/bin/python benchmarks/serve.py --out benchmarks/results/serve.jsonl
    .venv/bin/python benchmarks/serve.py --phases single --single-seconds 10   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# ------------------------------------------------------------------------------------------------ load generator
async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> tuple[int, bytes]:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _load(host: str, port: int, payload: bytes, rate: float | None, duration: float, connections: int,
                max_requests: int) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    t0 = loop.time() + 0.2
    stop = t0 + duration

    async def worker() -> None:
        nonlocal sent, errors
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                i = sent
                if i >= max_requests:
                    return
                sent += 1
                if rate is not None:
                    due = t0 + i / rate
                    if due >= stop or loop.time() > stop + 2.0:  # behind schedule: the rest is never sent
                        return
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                else:
                    due = loop.time()
                    if due >= stop:
                        return
                try:
                    status, _ = await _request(reader, writer, payload)
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(loop.time() - due)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(connections)])
    wall = time.perf_counter() - started - 0.2
    lat = np.asarray(latencies) * 1000
    ok = statuses.get(200, 0)
    return {
        "rate": rate, "connections": connections, "seconds": round(wall, 2), "requests": len(latencies),
        "due_not_sent": max(0, int(rate * duration) - sent) if rate is not None else 0,
        "ok": ok, "statuses": statuses, "errors": errors, "achieved_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
        "max_ms": round(float(lat.max()), 3) if lat.size else None,
    }


def loadgen_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="serve.py loadgen")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--body", required=True, help="file with the request body")
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--accept", default="application/json")
    p.add_argument("--rate", type=float, default=None)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--max-requests", type=int, default=10_000_000)
    a = p.parse_args(argv)
    body = Path(a.body).read_bytes()
    head = (f"POST {a.path} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\nContent-Type: {a.content_type}\r\n"
            f"Accept: {a.accept}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out = asyncio.run(_load("127.0.0.1", a.port, head + body, a.rate, a.seconds, a.connections, a.max_requests))
    print(json.dumps(out))


def run_load(port: int, path: str, body: bytes, *, rate: float | None, seconds: float, connections: int,
             content_type: str = "application/json", accept: str = "application/json",
             max_requests: int = 10_000_000) -> dict:
    """The load generator in a second process."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
    cmd = [sys.executable, __file__, "loadgen", "--port", str(port), "--path", path, "--body", f.name,
           "--content-type", content_type, "--accept", accept, "--seconds", str(seconds),
           "--connections", str(connections), "--max-requests", str(max_requests)]
    if rate is not None:
        cmd += ["--rate", str(rate)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`anomalia serve` in a subprocess."""

    def __init__(self, models: list[Path], state: Path, *, extra: list[str] = ()) -> None:
        self.port = free_port()
        cmd = [str(BIN / "anomalia"), "serve", *map(str, models), "--port", str(self.port), "--state-dir", str(state),
               *extra]
        self.log = open(state.parent / f"server-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not get ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def batch_histogram(self, model: str) -> dict[str, float]:
        import httpx

        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("anomalia_microbatch_rows") and f'model="{model}"' in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def batch_stats(before: dict[str, float], after: dict[str, float]) -> dict:
    def val(d: dict[str, float], suffix: str) -> float:
        return sum(v for k, v in d.items() if k.startswith(f"anomalia_microbatch_rows_{suffix}"))

    n = val(after, "count") - val(before, "count")
    rows = val(after, "sum") - val(before, "sum")
    buckets = {}
    for k, v in after.items():
        if "_bucket" in k:
            le = k.split('le="')[1].split('"')[0]
            buckets[le] = v - before.get(k, 0.0)
    # median batch from the cumulative buckets
    median = None
    for le, c in sorted(((float(k), v) for k, v in buckets.items() if k != "+Inf"), key=lambda kv: kv[0]):
        if n and c >= n / 2:
            median = le
            break
    return {"batches": int(n), "mean_rows": round(rows / n, 2) if n else None, "median_rows_le": median}


# ------------------------------------------------------------------------------------------------ data and models
def table_model(work: Path) -> tuple[Path, dict]:
    if (work / "tabular").exists():
        import pandas as pd

        frame = pd.read_parquet(work / "train.parquet")
        return work / "tabular", {c: (float(frame[c].iloc[7]) if c != "site" else str(frame[c].iloc[7]))
                                  for c in frame.columns}
    return _fit_table_model(work)


def _fit_table_model(work: Path) -> tuple[Path, dict]:
    """The default tabular autoencoder (`anomalia fit` defaults) on 10,000 rows: 16 numbers, 1 category
    (and 10,000 more rows of the same distribution for the batch bodies)."""
    import pandas as pd

    from anomalia.workflows import fit_file

    rng = np.random.default_rng(0)
    n = 20_000  # the first half to fit on
    base = rng.normal(size=(n, 4))
    mix = rng.normal(size=(4, 16))
    frame = pd.DataFrame(base @ mix + 0.1 * rng.normal(size=(n, 16)), columns=[f"x{i}" for i in range(16)])
    frame["site"] = rng.choice(["north", "south", "east", "west"], n)
    data = work / "train.parquet"
    frame.iloc[:10_000].to_parquet(data, index=False)
    frame.iloc[10_000:].to_parquet(work / "test.parquet", index=False)
    out = work / "tabular"
    fit_file(data, out=out)
    record = {c: (float(frame[c].iloc[7]) if c != "site" else str(frame[c].iloc[7])) for c in frame.columns}
    return out, record


def series_model(work: Path) -> tuple[Path, object]:
    import pandas as pd

    from anomalia.detectors import WindowAutoEncoder
    from anomalia.model import Model

    rng = np.random.default_rng(1)
    n = 3000
    t = pd.date_range("2026-01-01", periods=n, freq="1min")
    frame = pd.DataFrame({"time": t, "cpu": np.sin(np.arange(n) / 20) + 0.1 * rng.normal(size=n),
                          "mem": np.cos(np.arange(n) / 30) + 0.1 * rng.normal(size=n)})
    det = WindowAutoEncoder(window=16, time_column="time", epochs=3, random_state=0).fit(frame)
    out = work / "series"
    Model(det, name="series").save(out)
    return out, frame


# ------------------------------------------------------------------------------------------------ phases
def baseline(model_dir: Path, record: dict, seconds: float = 3.0) -> dict:
    """Bare `Model.score` in this process (1 torch thread, as the server), the same record: the reference the
    service's figures are divided by (the machine is shared, so absolute rates move from run to run)."""
    import pyarrow as pa
    import torch

    from anomalia.model import Model

    torch.set_num_threads(1)
    model = Model.load(model_dir)
    out = {"phase": "baseline"}
    for n in (1, 64):
        table = pa.Table.from_pylist([record] * n)
        for _ in range(10):
            model.score(table)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.score(table)
            calls += 1
        out[f"calls_per_s_{n}"] = round(calls / (time.perf_counter() - start), 1)
        out[f"rows_per_s_{n}"] = round(n * calls / (time.perf_counter() - start), 1)
    print(json.dumps(out), flush=True)
    return out


def phase_single(work: Path, args: argparse.Namespace) -> list[dict]:
    model, record = table_model(work)
    body = json.dumps({"records": [record]}).encode()
    out = [baseline(model, record)]
    server = Server([model], work / "state-single")
    try:
        path = "/v1/models/tabular/score"
        run_load(server.port, path, body, rate=200, seconds=3, connections=16)  # warm-up
        plan = [(r, args.single_seconds if r == 1500 else min(args.single_seconds, 15), c)
                for r, c in ((100, 8), (500, 32), (1500, 64))]
        for rate, seconds, conns in plan:
            before = server.batch_histogram("tabular")
            res = run_load(server.port, path, body, rate=rate, seconds=seconds, connections=conns)
            res.update(phase="single", target_rps=rate, **batch_stats(before, server.batch_histogram("tabular")))
            print(json.dumps(res), flush=True)
            out.append(res)
        for conns in (64, 256):
            before = server.batch_histogram("tabular")
            res = run_load(server.port, path, body, rate=None, seconds=min(args.single_seconds, 15), connections=conns)
            after = server.batch_histogram("tabular")
            res.update(phase="single", target_rps="saturating", **batch_stats(before, after))
            print(json.dumps(res), flush=True)
            out.append(res)
    finally:
        server.stop()
    return out


def phase_batch(work: Path, args: argparse.Namespace) -> list[dict]:
    import pandas as pd
    import pyarrow as pa

    model = table_model(work)[0]
    frame = pd.read_parquet(work / "test.parquet")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    arrow = sink.getvalue().to_pybytes()
    js = json.dumps({"records": frame.to_dict(orient="records")}).encode()
    server = Server([model], work / "state-batch")
    import pyarrow.ipc  # noqa: F401

    from anomalia.model import Model

    m = Model.load(model)
    m.score(table)
    start = time.perf_counter()
    for _ in range(3):
        m.score(table)
    out = [{"phase": "batch-baseline", "rows_per_s": round(30_000 / (time.perf_counter() - start))}]
    print(json.dumps(out[0]), flush=True)
    try:
        path = "/v1/models/tabular/score"
        cases = [("arrow", arrow, "application/vnd.apache.arrow.stream", "application/json"),
                 ("arrow", arrow, "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.stream"),
                 ("json", js, "application/json", "application/json"),
                 ("json", js, "application/json", "application/vnd.apache.arrow.stream")]
        run_load(server.port, path, arrow, rate=None, seconds=3, connections=2,
                 content_type="application/vnd.apache.arrow.stream")
        for fmt, body, ctype, accept in cases:
            res = run_load(server.port, path, body, rate=None, seconds=args.batch_seconds, connections=2,
                           content_type=ctype, accept=accept)
            res.update(phase="batch", body=fmt, answer=accept.rsplit("/", 1)[1], body_bytes=len(body),
                       rows_per_s=round(res["ok"] * 10_000 / res["seconds"]))
            print(json.dumps(res), flush=True)
            out.append(res)
    finally:
        server.stop()
    return out


def phase_reload(work: Path, args: argparse.Namespace) -> list[dict]:
    import httpx

    from anomalia.model import Model

    model, record = table_model(work)
    body = json.dumps({"records": [record]}).encode()
    server = Server([model], work / "state-reload")
    try:
        versions = []
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(1) as pool:
            load = pool.submit(run_load, server.port, "/v1/models/tabular/score", body, rate=500, seconds=12,
                               connections=32)
            time.sleep(1.0)
            m = Model.load(model)
            for _ in range(10):
                m.save(model)  # a new version in the same folder (atomic write), then reload
                r = httpx.post(f"{server.url}/v1/models/tabular/reload", timeout=30)
                versions.append((r.status_code, r.json().get("version")))
                time.sleep(0.8)
            res = load.result()
        res.update(phase="reload", reloads=len(versions), reload_status=sorted({s for s, _ in versions}),
                   distinct_versions=len({v for _, v in versions}))
        res["failed"] = res["requests"] - res["ok"] + res["errors"]
        print(json.dumps(res), flush=True)
        return [res]
    finally:
        server.stop()


def _ingest_all(server_url: str, batches: list[list[dict]], keys: list[str], *, crash: Server | None = None,
                restart=None, kills: int = 0, seed: int = 0) -> tuple[dict, int]:
    import httpx

    rng = random.Random(seed)
    total = len(batches) * len(keys)
    kill_at = sorted(rng.sample(range(1, total), kills)) if kills else []
    scores: dict[tuple[str, int], list[float]] = {}
    n = 0
    done_kills = 0
    client = httpx.Client(timeout=30)
    url = server_url
    for b, batch in enumerate(batches):
        for key in keys:
            while True:
                if done_kills < len(kill_at) and n == kill_at[done_kills] and crash is not None:
                    crash.kill()
                    crash = restart()
                    url = crash.url
                    done_kills += 1
                try:
                    r = client.post(f"{url}/v1/models/series/ingest/{key}", json={"points": batch})
                except httpx.HTTPError:
                    time.sleep(0.2)
                    continue
                if r.status_code == 409:  # applied before the kill, answer lost: state moved on already
                    break
                r.raise_for_status()
                scores[(key, b)] = [p["score"] for p in r.json()["results"]]
                break
            n += 1
    client.close()
    return scores, done_kills


def phase_crash(work: Path, args: argparse.Namespace) -> list[dict]:
    model, frame = series_model(work)
    test = frame.iloc[2000:2600].copy()
    test.loc[test.index[300:305], "cpu"] += 4.0
    points = [{"time": t.isoformat(), "cpu": float(c), "mem": float(m)}
              for t, c, m in zip(test["time"], test["cpu"], test["mem"], strict=True)]
    batches = [points[i:i + 10] for i in range(0, len(points), 10)]
    keys = [f"host-{i}" for i in range(8)]
    shutil.rmtree(work / "state-ref", ignore_errors=True)
    ref_server = Server([model], work / "state-ref")
    try:
        ref, _ = _ingest_all(ref_server.url, batches, keys)
    finally:
        ref_server.stop()
    state = work / "state-crash"
    holder = {"s": Server([model], state)}

    def restart() -> Server:
        holder["s"].log.close()
        holder["s"] = Server([model], state)
        return holder["s"]

    try:
        got, kills = _ingest_all(holder["s"].url, batches, keys, crash=holder["s"], restart=restart,
                                 kills=args.kills, seed=1)
    finally:
        holder["s"].stop()
    common = [k for k in ref if k in got]
    equal = sum(np.array_equal(np.asarray(ref[k]), np.asarray(got[k])) for k in common)
    res = {"phase": "crash", "keys": len(keys), "batches_per_key": len(batches), "kills": kills,
           "answered_batches": len(got), "lost_answers_409": len(ref) - len(got), "compared": len(common),
           "equal": int(equal), "max_abs_diff": float(max(np.max(np.abs(np.asarray(ref[k]) - np.asarray(got[k])))
                                                       for k in common))}
    print(json.dumps(res), flush=True)
    return [res]


def phase_bigbody(work: Path, args: argparse.Namespace) -> list[dict]:
    model = table_model(work)[0]
    server = Server([model], work / "state-big")
    out = []
    try:
        size = 100 * 1024 * 1024
        for mode in ("content-length", "chunked"):
            time.sleep(0.5)
            rss0 = server.rss()
            peak = rss0
            status = None
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
                if mode == "content-length":
                    s.sendall(f"POST /v1/models/tabular/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                              f"\r\nContent-Length: {size}\r\n\r\n".encode())
                else:
                    s.sendall(b"POST /v1/models/tabular/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                              b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"x" * (1 << 20)
                sent = 0
                started = time.perf_counter()
                s.settimeout(0.05)
                answer = b""
                while sent < size:
                    try:
                        if mode == "chunked":
                            s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        else:
                            s.sendall(chunk)
                        sent += len(chunk)
                    except (TimeoutError, BlockingIOError):
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    try:
                        got = s.recv(65536)
                        if got:
                            answer += got
                            break
                    except (TimeoutError, BlockingIOError):
                        pass
                    except ConnectionResetError:
                        break
                    peak = max(peak, server.rss())
                s.settimeout(5)
                try:
                    while b"\r\n\r\n" not in answer:
                        more = s.recv(65536)
                        if not more:
                            break
                        answer += more
                except (TimeoutError, ConnectionResetError):
                    pass
                status = int(answer[9:12]) if answer.startswith(b"HTTP/1.1") else None
                seconds = time.perf_counter() - started
            peak = max(peak, server.rss())
            res = {"phase": "bigbody", "mode": mode, "status": status, "bytes_sent_before_answer": sent,
                   "seconds": round(seconds, 3), "rss_before_mb": round(rss0 / 2**20, 1),
                   "rss_growth_mb": round((peak - rss0) / 2**20, 1)}
            print(json.dumps(res), flush=True)
            out.append(res)
    finally:
        server.stop()
    return out


PHASES = {"single": phase_single, "batch": phase_batch, "reload": phase_reload, "crash": phase_crash,
          "bigbody": phase_bigbody}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "loadgen":
        return loadgen_main(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {list(PHASES)}")
    p.add_argument("--single-seconds", type=float, default=60.0, help="seconds at 1,500 requests/s (others ≤ 15)")
    p.add_argument("--batch-seconds", type=float, default=10.0)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--out", default=None, help="append the JSON lines to this file")
    p.add_argument("--work", default=None, help="keep data and models in this folder (reused when run again)")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="anomalia-serve-bench-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.phases.split(","):
            for state in work.glob(f"state-{name.strip()}*"):
                shutil.rmtree(state)
            results += PHASES[name.strip()](work, args)
    if args.out:
        with open(args.out, "a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
