"""Scale-out on a real Dask cluster (scheduler and single-threaded worker processes on loopback): a dataset
scored row for row as local scoring does, a worker killed mid-job, per-key fitting and routing, the
command line and its one-line errors."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia.cli import main
from anomalia.scale import fit_by_key, score_dataset
from anomalia.scale.fitkeys import same_models
from anomalia.workflows import score as score_local

from dask_cluster import dask_cluster
from tabular_files import FAST, mixed_frame

SET = [x for kv in FAST for x in ("--set", kv)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with dask_cluster(tmp_path_factory.mktemp("dask")) as c:
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A model, a hive-partitioned Parquet dataset (host=a/, host=b/), the same rows as CSV files and as one
    file, and the local scores of that file."""
    tmp = tmp_path_factory.mktemp("scale")
    df = mixed_frame(1500)
    df.to_parquet(tmp / "train.parquet", index=False)
    main_args = ["fit", str(tmp / "train.parquet"), "--label-column", "label", "--out", str(tmp / "model"), *SET]
    with pytest.raises(SystemExit) as exc:
        main(main_args)
    assert exc.value.code in (0, None)
    df = df.assign(host=np.where(np.arange(len(df)) < 600, "a", "b"))
    for host, part in df.groupby("host", sort=True):
        (tmp / "ds" / f"host={host}").mkdir(parents=True)
        part.drop(columns="host").iloc[:300].to_parquet(tmp / "ds" / f"host={host}" / "0.parquet", index=False)
        part.drop(columns="host").iloc[300:].to_parquet(tmp / "ds" / f"host={host}" / "1.parquet", index=False)
    (tmp / "csv").mkdir()
    df.iloc[:700].to_csv(tmp / "csv" / "p0.csv", index=False)
    df.iloc[700:].to_csv(tmp / "csv" / "p1.csv", index=False)
    df.to_parquet(tmp / "all.parquet", index=False)
    score_local(tmp / "model", tmp / "all.parquet", tmp / "local.parquet", keep=["label"])
    return tmp, pd.read_parquet(tmp / "local.parquet")


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Identical rows; the expected (reconstructed) values of the flagged rows' top features, and the shares of
    their counterfactual ranking, are recomputed on those rows only, a batch whose size differs between one
    file and its partitions, so float32 rounding may differ in the last bits there (scores, p-values, flags
    and the top features are compared exactly)."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    rounded = [c for c in a.columns if c.startswith(("top_expected_", "top_share_"))]
    pd.testing.assert_frame_equal(a.drop(columns=rounded), b.drop(columns=rounded), check_categorical=False,
                                  check_exact=True)
    pd.testing.assert_frame_equal(a[rounded], b[rounded], check_exact=False, rtol=1e-5)


def test_dask_scores_a_dataset_row_for_row_as_local_scoring(cluster, data):
    tmp, local = data
    out = tmp / "out-csv"
    frame = score_dataset(tmp / "model", str(tmp / "csv" / "*.csv"), out, scheduler=cluster.address, keep=["label"])
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]  # one per input
    got = frame.compute()
    assert list(got.columns) == list(local.columns)
    _same(got, local)  # same rows, numbered across the files, identical scores, flags and contributions
    assert pd.read_parquet(out / "part-00001.parquet")["row"].iloc[0] == 700


def test_hive_partitions_are_columns_and_one_part_each(cluster, data):
    tmp, local = data
    frame = score_dataset(tmp / "model", tmp / "ds", tmp / "out-hive", scheduler=cluster.address, keep=["host"])
    got = frame.compute()
    assert len(list((tmp / "out-hive").glob("part-*.parquet"))) == 4
    assert got.groupby("host", observed=True).size().to_dict() == {"a": 600, "b": 900}
    # the hive dataset holds the same rows in the same order as the file: identical scores
    np.testing.assert_array_equal(got["score"].to_numpy(), local["score"].to_numpy())


def test_a_lazy_frame_scores_on_the_current_client(cluster, data):
    tmp, local = data
    with cluster.client():
        frame = score_dataset(tmp / "model", tmp / "all.parquet", keep=["label"])
        _same(frame.compute(), local)


def test_a_worker_killed_mid_job_the_job_still_completes(cluster, data, tmp_path):
    tmp, _ = data
    df = mixed_frame(40_000, seed=3)
    (tmp_path / "big").mkdir()
    for i in range(10):
        df.iloc[i * 4000 : (i + 1) * 4000].to_parquet(tmp_path / "big" / f"{i:02d}.parquet", index=False)
    df.to_parquet(tmp_path / "big.parquet", index=False)
    victim = cluster.start_worker(nanny=False, name="victim")
    cluster.wait_for_workers(3)
    result: dict[str, object] = {}

    def job() -> None:
        try:
            result["frame"] = score_dataset(
                tmp / "model", tmp_path / "big", tmp_path / "out", scheduler=cluster.address
            )
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    with cluster.client() as c:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = {w["name"]: a for a, w in c.scheduler_info()["workers"].items()}
            if "victim" in busy and c.processing(workers=[busy["victim"]]).get(busy["victim"]):
                break
            time.sleep(0.02)
        killed_busy = time.monotonic() < deadline
        victim.kill()
        victim.wait(10)
    thread.join(300)
    assert killed_busy, "the extra worker never got a task"
    assert "error" not in result, result.get("error")
    score_local(tmp / "model", tmp_path / "big.parquet", tmp_path / "local.parquet")
    _same(result["frame"].compute(), pd.read_parquet(tmp_path / "local.parquet"))  # type: ignore[union-attr]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no half-written part left


def test_per_key_fit_in_parallel_gives_the_sequential_models_and_routes_rows(cluster, data, capsys):
    tmp, _ = data
    params = {"epochs": 2, "hidden": (8, 4), "batch_size": 64}
    parallel = fit_by_key(
        tmp / "ds", key="host", out=tmp / "keyed", scheduler=cluster.address, params=params, drop=["label"]
    )
    sequential = fit_by_key(
        tmp / "ds", key="host", out=tmp / "keyed-seq", engine="local", params=params, drop=["label"]
    )
    assert sorted(parallel.models) == ["a", "b"] and same_models(parallel, sequential)
    assert (tmp / "keyed" / "host=a" / "anomalia.json").exists() and an.scale.is_model_index(tmp / "keyed")
    # routing: every row scored by its host's model, in input order
    code = _run(
        [
            "score",
            tmp / "keyed",
            tmp / "ds",
            "--out",
            tmp / "routed",
            "--engine",
            "dask",
            "--scheduler",
            cluster.address,
            "--keep",
            "host",
        ],
        capsys,
    )[0]
    assert code == 0
    routed = pd.read_parquet(tmp / "routed")
    rows_a = pd.concat([pd.read_parquet(tmp / "ds" / "host=a" / f"{i}.parquet") for i in (0, 1)], ignore_index=True)
    rows_a.to_parquet(tmp / "a.parquet", index=False)
    score_local(tmp / "keyed" / "host=a", tmp / "a.parquet", tmp / "a-scores.parquet")
    mine = routed[routed["host"] == "a"].reset_index(drop=True)
    np.testing.assert_array_equal(
        mine["score"].to_numpy(), pd.read_parquet(tmp / "a-scores.parquet")["score"].to_numpy()
    )
    assert routed["row"].tolist() == list(range(1500))


def _run(args: list[object], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_cli_score_with_engine_dask_and_a_local_cluster(data, capsys):
    tmp, local = data
    code, out, err = _run(
        [
            "score",
            tmp / "model",
            tmp / "all.parquet",
            "--out",
            tmp / "cli-out",
            "--engine",
            "dask",
            "--workers",
            "1",
            "--keep",
            "label",
        ],
        capsys,
    )
    assert code == 0, err
    assert "1,500" in out and "warning" not in err
    _same(pd.read_parquet(tmp / "cli-out"), local)


def test_cli_fit_key_with_the_dask_engine(cluster, data, capsys):
    tmp, _ = data
    code, out, err = _run(
        [
            "fit",
            tmp / "ds",
            "--key",
            "host",
            "--engine",
            "dask",
            "--scheduler",
            cluster.address,
            "--out",
            tmp / "cli-keyed",
            "--drop",
            "label",
            *SET,
        ],
        capsys,
    )
    assert code == 0, err
    assert "2, one per host" in out
    assert sorted(p.name for p in (tmp / "cli-keyed").iterdir()) == ["anomalia-index.json", "host=a", "host=b"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["score", "{m}", "{d}", "--out", "{t}/o", "--engine", "ray"], "engine must be one of"),
        (
            ["score", "{m}", "{d}", "--out", "{t}/o", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"],
            "cannot reach the Dask scheduler",
        ),
        (["score", "{m}", "{t}/nothere", "--out", "{t}/o", "--engine", "dask"], "no such file or folder"),
        (["fit", "{d}", "--key", "machine", "--engine", "local", "--out", "{t}/k"], "no key column(s) ['machine']"),
        (["score", "{m}", "{d}", "--out", "{t}/o", "--workers", "2"], "go with --engine dask"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(data, capsys, args, needle):
    tmp, _ = data
    fill = {"m": tmp / "model", "d": tmp / "ds", "t": tmp}
    code, _, err = _run([a.format(**fill) for a in args], capsys)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_a_dataset_folder_is_never_taken_for_images(data):
    tmp, _ = data
    assert an.workflows.choose_detector(str(tmp / "ds"), None, None) == "autoencoder"
    assert Path(tmp / "ds").is_dir()


def test_the_scheduler_never_loads_the_model_code(cluster, data):
    """distributed unpickles every graph on the scheduler: the task functions live in a module without torch,
    so a job does not make the scheduler import torch and the model stack (CPU taken from the workers)."""
    tmp, _ = data
    score_dataset(tmp / "model", tmp / "all.parquet", tmp / "out-light", scheduler=cluster.address)
    with cluster.client() as c:
        loaded = c.run_on_scheduler(lambda: sorted(m for m in ("torch", "anomalia.model") if m in sys.modules))
    assert loaded == []


def test_a_single_threaded_worker_reads_in_its_task_thread(data, monkeypatch):
    """A budget of one thread (``dask worker --nthreads 1``) scores without the reader thread, identically."""
    import anomalia.scale.partitions as partitions
    from anomalia.data import BATCH_ROWS
    from anomalia.scale.datasets import discover
    from anomalia.scale.options import ScoreOptions

    assert ScoreOptions().batch_rows == BATCH_ROWS  # the torch-free module's copy of the default
    tmp, local = data
    calls = []
    real = partitions.prefetch
    monkeypatch.setattr(partitions, "prefetch", lambda items, depth=2: calls.append(1) or real(items, depth))
    part = discover(str(tmp / "all.parquet"))[0]
    one = partitions.score_partition(str(tmp / "model"), part, 0, ScoreOptions(keep=("label",)), threads=1)
    assert calls == []
    two = partitions.score_partition(str(tmp / "model"), part, 0, ScoreOptions(keep=("label",)))
    assert calls == [1]
    _same(one, local)
    _same(two, local)
