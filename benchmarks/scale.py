"""Scale-out benchmarks: Dask / Spark scoring and fitting.

    .venv/bin/python benchmarks/scale.py --suite dask --rows 20000000
    .venv/bin/python benchmarks/scale.py --suite keys ddp

- **dask**: ROWS x 50 float32 columns in 16 Parquet files; an autoencoder fitted on 100,000 of them. Each
  file is scored locally (``anomalia.workflows.score``, the reference and the single-process baseline),
  then the dataset on a cluster started as processes (``dask scheduler`` + ``dask worker --nthreads 1`` on
  loopback) with one worker and with two, alternating (1, 2, 1, 2); every part is compared with the local
  scores of its file, value for value. Peak RSS per worker: the worker's own VmHWM.
- **keys**: SMD's 8 machines as one hive dataset (``machine=.../``); one CNN forecaster per machine (its
  defaults) fitted sequentially in this process and on 2 persistent, warmed workers that read their key's
  rows by path (same seed: the weights' checksums must be equal), and one global model on all machines'
  training steps; each machine's test steps scored by its own model and by the global one (ROC-AUC /
  PR-AUC against the labels, which no fit sees).
- **ddp**: the loss curve of ``torchrun --nproc-per-node 2 -m anomalia fit --ddp`` against one process at
  the same global batch and seed, per epoch.

Every Dask run reports the CPU seconds of each worker, the scheduler and the client with its wall time,
the CPU utilisation (all of them per wall second per core) and a CPU-time-normalised speed-up (the
busiest worker's CPU seconds against the one-worker or sequential run's): on a machine shared with other
jobs, the wall clock measures the load as much as the code; the CPU seconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine, markdown_table

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used: run in the benchmark, a worker or the scheduler."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Meter:
    """CPU seconds of the workers (each its own process), the scheduler and this client over one run, with
    its wall time: ``with Meter(client) as m: ...``; then ``m.wall``, ``m.workers`` (address -> CPU s),
    ``m.scheduler``, ``m.client``, ``m.tasks`` (address -> seconds computing, from Dask's task stream)."""

    def __init__(self, client) -> None:
        self.c = client

    def __enter__(self) -> Meter:
        self.load_before = _load()
        self._ts = time.time()
        self.c.get_task_stream(start=self._ts)  # installs the scheduler's task-stream plugin if it is not there
        self._w, self._s, self._c = self.c.run(_cpu_s), self.c.run_on_scheduler(_cpu_s), _cpu_s()
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t
        self.client = _cpu_s() - self._c
        self.scheduler = self.c.run_on_scheduler(_cpu_s) - self._s
        self.workers = {a: v - self._w[a] for a, v in self.c.run(_cpu_s).items()}
        self.tasks: dict[str, float] = {a: 0.0 for a in self.workers}
        self.counts: dict[str, int] = {a: 0 for a in self.workers}
        for rec in self.c.get_task_stream(start=self._ts):
            for ss in rec["startstops"]:
                if ss["action"] == "compute" and rec.get("worker") in self.tasks:
                    self.tasks[rec["worker"]] += ss["stop"] - ss["start"]
                    self.counts[rec["worker"]] += 1
        self.load_after = _load()

    @property
    def utilisation(self) -> float:
        """CPU seconds of workers + scheduler + client per wall second per core of the machine."""
        return (sum(self.workers.values()) + self.scheduler + self.client) / (self.wall * (os.cpu_count() or 1))

    @property
    def critical_cpu(self) -> float:
        """The busiest worker's CPU seconds: how long the run takes when every worker has a free core."""
        return max(self.workers.values())

    @property
    def even_cpu(self) -> float:
        """The workers' CPU seconds spread evenly over them: the same, had the tasks split evenly."""
        return sum(self.workers.values()) / len(self.workers)


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; getrusage's maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Cluster:
    """``dask scheduler`` and N ``dask worker --nthreads 1`` processes on loopback."""

    def __init__(self, n_workers: int, folder: Path) -> None:
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        from anomalia.scale.cluster import WORKER_ENV

        dask = [sys.executable, "-m", "dask"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": folder}
        # the environment a Dask nanny gives its workers (BLAS / OpenMP pools of one thread), without the
        # nanny's MALLOC_TRIM_THRESHOLD_=65536 (it slows torch 1.6-2.5x), and without the statistical profiler
        # (it walks the running task's stack every 10 ms: a quarter more CPU per scoring worker)
        threads = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        worker_env = {**os.environ, **threads, **WORKER_ENV}
        scheduler = [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        self.procs = [subprocess.Popen(scheduler, **quiet)]
        time.sleep(3)
        for _ in range(n_workers):
            cmd = [*dask, "worker", self.address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                   "--no-nanny"]  # fmt: skip
            self.procs.append(subprocess.Popen(cmd, env=worker_env, **quiet))
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(n_workers, timeout=300)
            c.run(lambda: __import__("anomalia.scale.partitions"))  # persistent workers: imported once

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=60)

    def peak_rss_mb(self) -> dict[str, float]:
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            return c.run(_peak_rss_mb)

    def close(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


# ----------------------------------------------------------------------------------------------- dask
def dask_suite(rows: int, folder: Path) -> str:
    import torch

    import anomalia as an
    from anomalia.scale import score_dataset
    from anomalia.workflows import score

    torch.set_num_threads(1)
    n_files, cols = 16, 50
    per = rows // n_files
    data = folder / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(cols, cols)).astype(np.float32) / np.sqrt(cols)
    t0 = time.perf_counter()
    for i in range(n_files):
        X = rng.standard_normal((per, cols), dtype=np.float32) @ mix
        table = pa.table({f"x{j}": X[:, j] for j in range(cols)})
        pq.write_table(table, data / f"part-{i:02d}.parquet", row_group_size=131072)
        if i == 0:
            pq.write_table(table.slice(0, 100_000), folder / "train.parquet")
    gen_s = time.perf_counter() - t0
    an.workflows.fit_file(folder / "train.parquet", out=folder / "model", params={"epochs": 3})

    # local: each file, one process (torch: all cores but one, the default of `anomalia score`)
    local_s, c0 = 0.0, _cpu_s()
    (folder / "local").mkdir()
    for f in sorted(data.iterdir()):
        t = time.perf_counter()
        score(folder / "model", f, folder / "local" / f.name)
        local_s += time.perf_counter() - t
    local_cpu = _cpu_s() - c0

    clusters = {1: Cluster(1, folder), 2: Cluster(2, folder)}
    runs: dict[int, list[Meter]] = {1: [], 2: []}
    try:
        for n in (1, 2, 1, 2):
            out = folder / f"out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            with clusters[n].client() as c, Meter(c) as m:
                score_dataset(folder / "model", data, out, scheduler=clusters[n].address)
            runs[n].append(m)
        rss = {n: c.peak_rss_mb() for n, c in clusters.items()}
    finally:
        for c in clusters.values():
            c.close()
    identical = True
    for i, f in enumerate(sorted(data.iterdir())):
        want = pq.read_table(folder / "local" / f.name).to_pandas()
        for n in (1, 2):
            got = pq.read_table(folder / f"out-{n}" / f"part-{i:05d}.parquet").to_pandas()
            got["row"] -= i * per  # the dataset numbers rows across files; a local run numbers them per file
            try:
                pd.testing.assert_frame_equal(got, want, check_exact=True, check_categorical=False)
            except AssertionError:
                identical = False
    best = {n: runs[n][1] for n in (1, 2)}  # each cluster's second run: its workers have the model loaded
    cores = os.cpu_count() or 1
    rows_t = [["local `anomalia score`, one process, file by file", local_s, "", rows / local_s,
               f"{local_cpu:.1f} (this process)", "", "", local_cpu / (local_s * cores), rows / local_cpu,
               ""]]  # fmt: skip
    for n in (1, 2):
        m = best[n]
        rows_t.append([
            f"Dask, {n} worker process{'es' if n > 1 else ''}", m.wall, ", ".join(f"{r.wall:.1f}" for r in runs[n]),
            rows / m.wall, ", ".join(f"{v:.1f}" for v in m.workers.values()), m.scheduler, m.client, m.utilisation,
            rows / sum(m.workers.values()), ", ".join(f"{v:.0f}" for v in rss[n].values()),
        ])  # fmt: skip
    table = markdown_table(
        ["run", "wall s (2nd run)", "both runs", "rows/s", "CPU s per worker", "scheduler CPU s", "client CPU s",
         "CPU utilisation (of all cores)", "rows per worker CPU-s", "peak RSS per worker (MB)"],
        rows_t,
    )  # fmt: skip
    warm = best
    crit = {n: warm[n].critical_cpu for n in (1, 2)}
    busy = {n: sum(warm[n].tasks.values()) for n in (1, 2)}
    return (
        f"**Dask scoring**: {rows:,} rows x {cols} float32 columns in {n_files} Parquet files (generated in "
        f"{gen_s:.0f} s), autoencoder. Load average (1/5/15 min) at the first Dask run {runs[1][0].load_before}, "
        f"after the last {runs[2][-1].load_after}.\n\n{table}\n\n"
        f"- 2 workers / 1 worker, wall clock (second runs): **{best[1].wall / best[2].wall:.2f}x**\n"
        f"- CPU-time-normalised (the busiest worker's CPU seconds in each cluster's second run: {crit[1]:.1f} s "
        f"with one worker, {crit[2]:.1f} s with two; the wall time when each worker has a free core): "
        f"**{crit[1] / crit[2]:.2f}x**\n"
        f"- seconds computing on the workers in those runs (Dask's task stream, summed over workers): "
        f"{busy[1]:.1f} s (1 worker), {busy[2]:.1f} s (2 workers); workers' CPU seconds: "
        f"{sum(warm[1].workers.values()):.1f} and {sum(warm[2].workers.values()):.1f}; partitions per worker with "
        f"two: {', '.join(str(v) for v in warm[2].counts.values())}; with the CPU spread evenly over the two "
        f"workers: **{warm[1].even_cpu / warm[2].even_cpu:.2f}x**\n"
        f"- every part identical to local scoring of its file, value for value: **{identical}**"
    )


# ----------------------------------------------------------------------------------------------- keys
SMD = [
    "machine-1-6", "machine-1-7", "machine-2-1", "machine-2-2", "machine-2-7", "machine-2-8", "machine-3-3",
    "machine-3-4",
]  # fmt: skip
#: The per-key fits use the detector's defaults (30 epochs, early stopping after 5, every window): a real
#: fit, not a shortened one, so that the benchmark weighs a fit against the overhead of running it remotely.
KEY_OPTS = {"model": "cnn-forecaster", "seed": 0}


def _warm_fit(path: str) -> float:
    """One small fit (2,000 steps, 1 epoch) in this process: the first fit of a process imports the series
    detectors and warms torch's kernels, which a persistent worker does once, not per task."""
    import tempfile

    import torch

    from anomalia.workflows import fit

    torch.set_num_threads(1)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pd.read_parquet(path).iloc[:2000].to_parquet(f"{tmp}/w.parquet", index=False)
        fit(f"{tmp}/w.parquet", out=f"{tmp}/m", model="cnn-forecaster", params={"epochs": 1}, seed=0)
    return time.perf_counter() - t


def keys_suite(folder: Path, with_global: bool = True) -> str:
    import torch

    import anomalia as an
    from anomalia.scale import fit_by_key
    from anomalia.scale.fitkeys import same_models

    torch.set_num_threads(1)
    smd = DATA / "timeseries" / "smd"
    ds = folder / "smd"
    tests = {}
    for m in SMD:
        z = np.load(smd / f"{m}.npz")
        (ds / f"machine={m}").mkdir(parents=True)
        frame = pd.DataFrame(z["train"].astype(np.float32), columns=[f"c{j}" for j in range(z["train"].shape[1])])
        frame.to_parquet(ds / f"machine={m}" / "train.parquet", index=False)
        tests[m] = (z["test"].astype(np.float32), z["test_label"].astype(int))
    warm_path = str(ds / f"machine={SMD[0]}" / "train.parquet")
    _warm_fit(warm_path)  # the same warm-up as each worker's, before either clock
    load_seq = _load()
    t, c0 = time.perf_counter(), _cpu_s()
    seq = fit_by_key(ds, key="machine", out=folder / "seq", engine="local", **KEY_OPTS)
    seq_s, seq_cpu = time.perf_counter() - t, _cpu_s() - c0
    cluster = Cluster(2, folder)
    try:
        with cluster.client() as c:
            workers = list(c.scheduler_info()["workers"])
            warm = [c.submit(_warm_fit, warm_path, workers=[w], allow_other_workers=False, pure=False) for w in workers]
            c.gather(warm)
            with Meter(c) as meter:
                par = fit_by_key(ds, key="machine", out=folder / "par", scheduler=cluster.address, **KEY_OPTS)
    finally:
        cluster.close()
    per_task = {"sequential": sum(m["seconds"] for m in seq.models.values()),
                "dask": sum(m["seconds"] for m in par.models.values())}  # fmt: skip
    cores = os.cpu_count() or 1
    timing = markdown_table(
        ["fit of the 8 per-machine models", "wall s", "wall ratio", "CPU s (per process)", "CPU utilisation",
         "sum of per-key fit s", "scheduler / client CPU s", "load average before"],
        [
            ["sequential (this process, 1 torch thread)", seq_s, 1.0, f"{seq_cpu:.1f}", seq_cpu / (seq_s * cores),
             per_task["sequential"], "", load_seq],
            ["Dask, 2 worker processes (warm)", meter.wall, seq_s / meter.wall,
             ", ".join(f"{v:.1f}" for v in meter.workers.values()), meter.utilisation, per_task["dask"],
             f"{meter.scheduler:.1f} / {meter.client:.1f}", meter.load_before],
        ],
    )  # fmt: skip
    text = (
        f"**Per-key fitting, SMD** (CNN forecaster with its defaults, {KEY_OPTS}; workers warmed by one small "
        f"fit each, as this process was):\n\n{timing}\n\n"
        f"- sequential / Dask, wall clock: **{seq_s / meter.wall:.2f}x**\n"
        f"- CPU-time-normalised (sequential CPU s / the busiest worker's CPU s: the wall-clock ratio when each "
        f"worker has a free core): **{seq_cpu / meter.critical_cpu:.2f}x**\n"
        f"- same weights sequential and on Dask for every machine: **{same_models(seq, par)}**"
    )
    if not with_global:
        return text
    # one global model: every machine's training steps, one after another
    frames = [pd.read_parquet(ds / f"machine={m}" / "train.parquet") for m in SMD]
    pd.concat(frames, ignore_index=True).to_parquet(folder / "all.parquet", index=False)
    t = time.perf_counter()
    an.workflows.fit(folder / "all.parquet", out=folder / "global", **KEY_OPTS)
    global_s = time.perf_counter() - t
    glob = an.load_model(folder / "global")
    rows, sums = [], np.zeros(4)
    for m in SMD:
        X, y = tests[m]
        frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
        own = an.load_model(folder / "par" / f"machine={m}").score(frame, explain="none").score
        one = glob.score(frame, explain="none").score
        vals = [an.metrics.roc_auc(y, own), an.metrics.pr_auc(y, own), an.metrics.roc_auc(y, one),
                an.metrics.pr_auc(y, one)]  # fmt: skip
        sums += vals
        rows.append([m, *vals])
    rows.append(["mean", *(sums / len(SMD))])
    quality = markdown_table(["machine", "per-key ROC-AUC", "per-key PR-AUC", "global ROC-AUC", "global PR-AUC"], rows)
    return f"{text}\n\nOne global model on all 8 machines' training steps: {global_s:.0f} s.\n\n{quality}"


# ----------------------------------------------------------------------------------------------- ddp
def ddp_suite(folder: Path) -> str:
    import torch

    from anomalia.workflows import fit_file

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 20), dtype=np.float32) @ (rng.normal(size=(20, 20)).astype(np.float32) / 4)
    pd.DataFrame(X, columns=[f"x{j}" for j in range(20)]).to_parquet(folder / "d.parquet", index=False)
    params = {"epochs": 10, "batch_size": 512, "patience": 20}
    sets = [x for k, v in params.items() for x in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "anomalia", "fit", str(folder / "d.parquet"), "--ddp",
           "--out", str(folder / "ddp"), *sets]  # fmt: skip
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    ddp_s = time.perf_counter() - t
    t = time.perf_counter()
    one = fit_file(folder / "d.parquet", out=folder / "one", params=params).history[-1]
    one_s = time.perf_counter() - t
    two = json.loads((folder / "ddp" / "anomalia.json").read_text())["detector"]["state"]["history"][-1]
    rows = [
        [e + 1, f"{one['train_loss'][e]:.6f}", f"{two['train_loss'][e]:.6f}",
         abs(one["train_loss"][e] - two["train_loss"][e]), abs(one["val_loss"][e] - two["val_loss"][e])]
        for e in range(len(one["train_loss"]))
    ]  # fmt: skip
    worst = max(max(r[3], r[4]) for r in rows)
    for r in rows:
        r[3], r[4] = f"{r[3]:.1e}", f"{r[4]:.1e}"
    return (
        f"**DDP** (autoencoder, 20,000 x 20 rows, {params}; 2 gloo processes vs 1 process, same global batch "
        f"and seed; {ddp_s:.0f} s incl. start-up vs {one_s:.0f} s):\n\n"
        + markdown_table(["epoch", "train loss, 1 process", "train loss, DDP 2", "diff train", "diff held-out"], rows)
        + f"\n\nLargest difference per epoch: **{worst:.2e}** (bar: 1e-4)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", nargs="+", default=["dask", "keys", "ddp"], choices=["dask", "keys", "ddp"])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--no-global", action="store_true", help="keys: skip the global model and its quality table")
    args = parser.parse_args()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"Machine: {machine()}; `uptime` at start: {uptime}\n", flush=True)
    for suite in args.suite:
        with tempfile.TemporaryDirectory(prefix=f"anomalia-bench-{suite}-") as tmp:
            t = time.perf_counter()
            text = {"dask": lambda: dask_suite(args.rows, Path(tmp)),
                    "keys": lambda: keys_suite(Path(tmp), not args.no_global),
                    "ddp": lambda: ddp_suite(Path(tmp))}[suite]()  # fmt: skip
            print(text, f"\n\n({suite}: {time.perf_counter() - t:.0f} s; load average now {_load()})\n",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
