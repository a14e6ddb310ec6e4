"""Scale-out benchmarks (issue: Dask / Spark scoring and fitting).

    .venv/bin/python benchmarks/scale.py --suite dask --rows 20000000
    .venv/bin/python benchmarks/scale.py --suite keys ddp

- **dask**: ROWS x 50 float32 columns in 16 Parquet files; an autoencoder fitted on 100,000 of them. Each
  file is scored locally (``anomalia.workflows.score``, the reference and the single-process baseline),
  then the dataset on a cluster started as processes (``dask scheduler`` + ``dask worker --nthreads 1`` on
  loopback) with one worker and with two, alternating (1, 2, 1, 2); every part is compared with the local
  scores of its file, value for value. Peak RSS per worker from the worker's own getrusage.
- **keys**: SMD's 8 machines as one hive dataset (``machine=.../``); one CNN forecaster per machine (the
  settings of ``benchmarks/timeseries.py``'s SMD suite) fitted sequentially in this process and on 2
  workers (same seed: the weights' checksums must be equal), and one global model on all machines'
  training steps; each machine's test steps scored by its own model and by the global one (ROC-AUC /
  PR-AUC against the labels, which no fit sees).
- **ddp**: the loss curve of ``torchrun --nproc-per-node 2 -m anomalia fit --ddp`` against one process at
  the same global batch and seed, per epoch.
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
        dask = [sys.executable, "-m", "dask"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": folder}
        scheduler = [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        self.procs = [subprocess.Popen(scheduler, **quiet)]
        time.sleep(3)
        for _ in range(n_workers):
            # --no-nanny: the nanny would set MALLOC_TRIM_THRESHOLD_=65536, which slows torch 1.6-2.5x
            cmd = [*dask, "worker", self.address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                   "--no-nanny"]  # fmt: skip
            self.procs.append(subprocess.Popen(cmd, **quiet))
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(n_workers, timeout=300)
            c.run(lambda: __import__("anomalia.scale.partitions"))

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
    local_s = 0.0
    (folder / "local").mkdir()
    for f in sorted(data.iterdir()):
        t = time.perf_counter()
        score(folder / "model", f, folder / "local" / f.name)
        local_s += time.perf_counter() - t

    clusters = {1: Cluster(1, folder), 2: Cluster(2, folder)}
    seconds: dict[int, list[float]] = {1: [], 2: []}
    try:
        for n in (1, 2, 1, 2):
            out = folder / f"out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            score_dataset(folder / "model", data, out, scheduler=clusters[n].address)
            seconds[n].append(time.perf_counter() - t)
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
    best = {n: min(s) for n, s in seconds.items()}
    table = markdown_table(
        ["run", "seconds (best of 2)", "all runs", "rows/s", "peak RSS per worker (MB)"],
        [
            ["local, one process, file by file", local_s, "", rows / local_s, ""],
            ["Dask, 1 worker process", best[1], ", ".join(f"{s:.1f}" for s in seconds[1]), rows / best[1],
             ", ".join(f"{v:.0f}" for v in rss[1].values())],
            ["Dask, 2 worker processes", best[2], ", ".join(f"{s:.1f}" for s in seconds[2]), rows / best[2],
             ", ".join(f"{v:.0f}" for v in rss[2].values())],
        ],
    )  # fmt: skip
    return (
        f"**Dask scoring**: {rows:,} rows x {cols} float32 columns in {n_files} Parquet files (generated in "
        f"{gen_s:.0f} s), autoencoder.\n\n{table}\n\n2 workers / 1 worker: **{best[1] / best[2]:.2f}x**; every "
        f"part identical to local scoring of its file, value for value: **{identical}**."
    )


# ----------------------------------------------------------------------------------------------- keys
SMD = [
    "machine-1-6", "machine-1-7", "machine-2-1", "machine-2-2", "machine-2-7", "machine-2-8", "machine-3-3",
    "machine-3-4",
]  # fmt: skip
SMD_PARAMS = {
    "window": 32, "filters": 32, "hidden": 64, "epochs": 8, "patience": 3, "batch_size": 256, "train_stride": 4,
    "smoothing": 5,
}  # fmt: skip


def keys_suite(folder: Path) -> str:
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
    opts = {"model": "cnn-forecaster", "params": SMD_PARAMS, "threshold": "pot:1e-3", "seed": 0}
    t = time.perf_counter()
    seq = fit_by_key(ds, key="machine", out=folder / "seq", engine="local", **opts)
    seq_s = time.perf_counter() - t
    cluster = Cluster(2, folder)
    try:
        from distributed import Client

        with Client(cluster.address, timeout=60) as c:  # what the sequential run had imported before its clock
            c.run(lambda: [__import__(m) for m in ("anomalia.scale.fitkeys", "anomalia.detectors", "scipy.stats")])
        t = time.perf_counter()
        par = fit_by_key(ds, key="machine", out=folder / "par", scheduler=cluster.address, **opts)
        par_s = time.perf_counter() - t
    finally:
        cluster.close()
    # one global model: every machine's training steps, one after another
    frames = [pd.read_parquet(ds / f"machine={m}" / "train.parquet") for m in SMD]
    pd.concat(frames, ignore_index=True).to_parquet(folder / "all.parquet", index=False)
    t = time.perf_counter()
    an.workflows.fit(folder / "all.parquet", out=folder / "global", **opts)
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
    timing = markdown_table(
        ["fit", "seconds", "ratio"],
        [
            ["8 per-machine models, sequential (this process, 1 torch thread)", seq_s, 1.0],
            ["8 per-machine models, Dask, 2 worker processes", par_s, seq_s / par_s],
            ["one global model on all 8 machines' training steps", global_s, ""],
        ],
    )
    quality = markdown_table(["machine", "per-key ROC-AUC", "per-key PR-AUC", "global ROC-AUC", "global PR-AUC"], rows)
    return (
        f"**Per-key fitting, SMD** (CNN forecaster {SMD_PARAMS}, POT 1e-3, seed 0):\n\n{timing}\n\n"
        f"Same weights sequential and on Dask for every machine: **{same_models(seq, par)}**.\n\n{quality}"
    )


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
    args = parser.parse_args()
    print(f"Machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}\n", flush=True)
    for suite in args.suite:
        with tempfile.TemporaryDirectory(prefix=f"anomalia-bench-{suite}-") as tmp:
            t = time.perf_counter()
            text = {"dask": lambda: dask_suite(args.rows, Path(tmp)), "keys": lambda: keys_suite(Path(tmp)),
                    "ddp": lambda: ddp_suite(Path(tmp))}[suite]()  # fmt: skip
            print(text, f"\n\n({suite}: {time.perf_counter() - t:.0f} s; load average now {os.getloadavg()[0]:.1f})\n",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
