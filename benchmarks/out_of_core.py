"""Out-of-core scoring: `anomalia score` on a Parquet file far larger than a batch, against in-memory scoring.

Generates a Parquet file of ROWS x 50 float32 features (20 million rows: 4 GB of values) in chunks, fits an
autoencoder on a small sample of the same distribution with `anomalia fit`, then, in the same run:

1. in memory: `detector.anomaly_score(X)` on a 1-million-row float32 array in this process (best of 3);
2. out of core: `anomalia score MODEL DATA --out scores.parquet` in a subprocess, whose resident memory is
   polled with psutil (the whole process tree) and read from the kernel's VmHWM.

Throughput of (2) is end to end: rows / wall-clock seconds of the subprocess, start-up and writing the
output included. Bars: peak RSS < 1.5 GB and throughput >= 70 % of (1). Then each stage of the command
(decode, encode, score, p-values, output) is timed alone on one thread over the first million rows, to
show where the CPU time goes and the rate that perfect use of the cores would give. The generated files
are deleted.

    nice -n 5 .venv/bin/python benchmarks/out_of_core.py               # the full run (about 4 GB on /tmp)
    .venv/bin/python benchmarks/out_of_core.py --rows 2000000          # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = 50
CHUNK = 1_000_000
RSS_BAR = 1.5e9
RATIO_BAR = 0.70


def make_rows(rng: np.random.Generator, n: int, mix: np.ndarray) -> np.ndarray:
    """Normal rows with correlated features: 10 latent factors mixed into 50 columns plus noise."""
    latent = rng.standard_normal((n, mix.shape[0]), dtype=np.float32)
    X = latent @ mix + np.float32(0.3) * rng.standard_normal((n, mix.shape[1]), dtype=np.float32)
    return X.astype(np.float32, copy=False)


def write_parquet(path: Path, rows: int, mix: np.ndarray, seed: int) -> float:
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(FEATURES)]
    schema = pa.schema([(n, pa.float32()) for n in names])
    start = time.perf_counter()
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, rows, CHUNK):
            X = make_rows(rng, min(CHUNK, rows - lo), mix)
            writer.write_table(pa.table(dict(zip(names, X.T, strict=True)), schema=schema))  # 1 row group per chunk
    return time.perf_counter() - start


def _hwm(pid: int) -> int:
    """Peak resident memory of process ``pid`` so far (VmHWM), in bytes; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_child(cmd: list[str], log: Path) -> tuple[float, int, int, str, float]:
    """Run ``cmd``; return wall seconds, the peak RSS of its process tree from psutil polling, the largest
    VmHWM (the kernel's own peak RSS of the process, so nothing between polls is missed), its stdout and the
    CPU seconds it used (user + system, from wait4).

    getrusage's ru_maxrss is not used: after fork + exec it starts from the parent's RSS at fork time.
    """
    start = time.perf_counter()
    with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        ps = psutil.Process(proc.pid)
        peak = hwm = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, _hwm(proc.pid))
            try:
                total = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(0.02)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{log.with_suffix('.err').read_text()[-2000:]}")
    return wall, peak, hwm, log.read_text(), usage.ru_utime + usage.ru_stime


def stage_costs(model_dir: Path, data: Path, rows: int) -> dict[str, float]:
    """CPU seconds per million rows of each stage of `anomalia score`, run one after another on one thread
    over the first ``rows`` rows of ``data`` (explanations left out): where the command's CPU time goes."""
    import torch

    from anomalia.data import iter_batches
    from anomalia.model import Model
    from anomalia.results import Contributions, ScoredRows
    from anomalia.workflows.score import _parquet_options

    m = Model.load(model_dir)
    det = m.detector
    calibrator = det.calibrator_

    def unexplained(n: int) -> Contributions:  # the top-feature columns of an unexplained row, as `score` writes
        return Contributions.none(n, m.input_columns, 3)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], list]) -> list:
        start = time.process_time()
        out = fn()
        seconds[name] = time.process_time() - start
        return out

    def read() -> list[pa.RecordBatch]:
        out: list[pa.RecordBatch] = []
        for batch in iter_batches(data, m.input_columns):
            out.append(batch)
            if sum(b.num_rows for b in out) >= rows:
                break
        return out

    def write(out: list[pa.RecordBatch]) -> list:
        with pq.ParquetWriter(data.with_name("stages.parquet"), out[0].schema, **_parquet_options(out[0].schema)) as w:
            for b in out:
                w.write_table(b)
        return []

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        batches = timed("read and decode the Parquet input", read)
        Xs = timed("encode into a float32 matrix", lambda: [m.encoder.transform(b) for b in batches])
        scores = timed("`anomaly_score`", lambda: [det.anomaly_score(X) for X in Xs])
        pf = timed("p-values and flags", lambda: [(calibrator.p_values(s), det.decide(s)) for s in scores])
        out = timed(
            "build the output batches",
            lambda: [
                ScoredRows(s, p, f, row=np.arange(s.size, dtype=np.int64), contributions=unexplained(s.size)).to_arrow()
                for s, (p, f) in zip(scores, pf, strict=True)
            ],
        )
        timed("write the output Parquet", lambda: write(out))
    finally:
        torch.set_num_threads(before)
    n = sum(b.num_rows for b in batches)
    return {name: s * 1e6 / n for name, s in seconds.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--memory-rows", type=int, default=1_000_000, help="rows of the in-memory baseline")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a new folder under /tmp)")
    ap.add_argument("--explain", default="flagged", help="the --explain option of `anomalia score`")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()

    import torch

    import anomalia
    from anomalia.model import load_model

    work = Path(args.dir or tempfile.mkdtemp(prefix="anomalia-ooc-"))
    work.mkdir(parents=True, exist_ok=True)
    need = args.rows * FEATURES * 4 * 1.3
    free = shutil.disk_usage(work).free
    if free < need:
        sys.exit(f"{work} has {free / 1e9:.1f} GB free; the data and scores need about {need / 1e9:.1f} GB")
    exe = str(Path(sys.executable).with_name("anomalia"))
    try:
        rng = np.random.default_rng(0)
        mix = (rng.standard_normal((10, FEATURES)) / np.sqrt(10)).astype(np.float32)
        train = work / "train.parquet"
        names = [f"f{i:02d}" for i in range(FEATURES)]
        pq.write_table(pa.table(dict(zip(names, make_rows(rng, 20_000, mix).T, strict=True))), train)
        model = work / "model"
        fit_cmd = [exe, "fit", str(train), "--out", str(model), "--set", "epochs=5"]
        fit_s = run_child(fit_cmd, work / "fit.log")[0]
        data = work / "data.parquet"
        gen_s = write_parquet(data, args.rows, mix, seed=1)
        size = data.stat().st_size

        # 1. in memory, in this process: 3 runs before and 3 after the out-of-core run (the machine is shared)
        det = load_model(model).detector
        X = make_rows(np.random.default_rng(2), args.memory_rows, mix)
        det.anomaly_score(X[:100_000])  # warm-up
        mem_runs: list[tuple[float, float]] = []  # (wall, cpu) seconds

        def in_memory() -> None:
            for _ in range(3):
                t, c = time.perf_counter(), time.process_time()
                det.anomaly_score(X)
                mem_runs.append((time.perf_counter() - t, time.process_time() - c))

        load_before = os.getloadavg()[0]
        in_memory()

        # 2. out of core, in a subprocess
        out = work / "scores.parquet"
        cmd = [exe, "score", str(model), str(data), "--out", str(out), "--explain", args.explain]
        wall, peak, hwm, stdout, child_cpu = run_child(cmd, work / "score.log")
        in_memory()
        load_after = os.getloadavg()[0]
        n_out = pq.ParquetFile(out).metadata.num_rows
        if n_out != args.rows:
            sys.exit(f"the scores file has {n_out} rows; expected {args.rows}")
        flagged = int(pq.read_table(out, columns=["is_anomaly"]).column(0).to_numpy().sum())
        stages = stage_costs(model, data, args.memory_rows)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    machine = (
        f"{os.cpu_count()}-core {platform.machine()} CPU, Python {platform.python_version()}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), anomalia {anomalia.__version__}"
    )
    m = args.memory_rows
    mem_mean = m * len(mem_runs) / sum(w for w, _ in mem_runs)
    mem_best = m / min(w for w, _ in mem_runs)
    mem_cpu = sum(c for _, c in mem_runs) / (m * len(mem_runs))  # CPU seconds per row
    rate = args.rows / wall
    ratio = rate / mem_mean
    cpu_ratio = mem_cpu / (child_cpu / args.rows)
    peak_rss = max(peak, hwm)
    ok_rss = "yes" if peak_rss < RSS_BAR else "**no**"
    ok_rate = "yes" if ratio >= RATIO_BAR else "**no**"
    print(f"machine: {machine}; load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"date: {time.strftime('%Y-%m-%d', time.gmtime())}; fit of the 20,000-row sample (5 epochs): {fit_s:.1f} s")
    print(f"data: {args.rows:,} rows x {FEATURES} float32 ({size / 1e9:.2f} GB Parquet, written in {gen_s:.0f} s)")
    print(f"`anomalia score --explain {args.explain}`: {flagged:,} rows flagged ({flagged / args.rows:.2%})\n")
    print("| measure | value | bar | met |")
    print("|---|---|---|---|")
    print(
        f"| in-memory `anomaly_score`, {m:,} rows, 3 runs before + 3 after: mean (best) | {mem_mean:,.0f} "
        f"({mem_best:,.0f}) rows/s | | |"
    )
    print(
        f"| `anomalia score` end to end (start-up included), {args.rows:,} rows | {wall:.1f} s = "
        f"{rate:,.0f} rows/s | | |"
    )
    print(
        f"| throughput ratio, out of core / in memory (mean) | {ratio:.0%} (vs best: {rate / mem_best:.0%}) "
        f"| ≥ 70 % | {ok_rate} |"
    )
    print(f"| CPU per row, in memory / out of core | {cpu_ratio:.0%} | | |")
    print(f"| peak RSS of the `anomalia score` process | {peak_rss / 1e9:.2f} GB | < 1.5 GB | {ok_rss} |")
    print(f"\n(peak RSS: psutil polling every 20 ms {peak / 1e9:.2f} GB, kernel VmHWM {hwm / 1e9:.2f} GB)")
    last = [line for line in stdout.splitlines() if "rows/s" in line]
    if last:
        print(f"(the command's own report, start-up excluded: {' '.join(last[-1].split())})")

    cores = len(os.sched_getaffinity(0))
    total = sum(stages.values())
    print(f"\nWhere the CPU time goes: each stage alone, one thread, first {m:,} rows of the file\n")
    print("| stage | CPU s per million rows |")
    print("|---|---|")
    for name, sec in stages.items():
        print(f"| {name} | {sec:.3f} |")
    print(f"| **total** | **{total:.3f}** |")
    threads = torch.get_num_threads()
    print(f"| in memory: `anomaly_score` ({threads} torch threads, CPU of all of them) | {mem_cpu * 1e6:.3f} |")
    ceiling = cores * 1e6 / total
    print(
        f"\nWith these stages spread perfectly over the {cores} cores, `anomalia score` would reach {ceiling:,.0f} "
        f"rows/s, {ceiling / mem_mean:.0%} of the in-memory mean; from the command's measured CPU time "
        f"({child_cpu:.1f} s, start-up included), {cores * args.rows / child_cpu / mem_mean:.0%}."
    )


if __name__ == "__main__":
    main()
