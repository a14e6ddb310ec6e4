"""Fitting beyond one in-memory table: ``--stream`` (bounded buffer, quality of an in-memory fit) and
``--ddp`` under torchrun with two processes on loopback (the single-process loss curve within 1e-4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomalia.cli import main
from anomalia.scale import fit_stream
from anomalia.workflows import evaluate, fit_file

from dask_cluster import free_port
from tabular_files import mixed_frame

PARAMS = {"epochs": 6, "hidden": (16, 8), "batch_size": 128}


def _subtle(n: int, seed: int):
    """mixed_frame with anomalies that break the a-c relation by 1.5 (not 6): a ranking left to learn."""
    df = mixed_frame(n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    bad = df["label"] == 1
    df.loc[bad, "c"] = 2 * df.loc[bad, "a"] + rng.choice([-1.5, 1.5], int(bad.sum()))
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_stream_fit_holds_a_bounded_buffer_and_matches_an_in_memory_fit(tmp_path):
    train, test = _subtle(24_000, 1), _subtle(4000, 2)
    pq.write_table(pa.Table.from_pandas(train, preserve_index=False), tmp_path / "train.parquet", row_group_size=1500)
    test.to_parquet(tmp_path / "test.parquet", index=False)
    stats: dict[str, int] = {}
    streamed = fit_stream(
        tmp_path / "train.parquet",
        out=tmp_path / "streamed",
        params=PARAMS,
        label_column="label",
        buffer_rows=4096,
        stats=stats,
    )
    fit_file(tmp_path / "train.parquet", out=tmp_path / "memory", params=PARAMS, label_column="label")
    # memory: the shuffle buffer plus one row group's training rows, never the 24,000 rows
    assert stats["max_rows_held"] <= 4096 + 1500
    assert streamed.n_train > 15_000 and streamed.n_calibration <= 5000 and streamed.epochs == PARAMS["epochs"]
    auc = {
        m: evaluate(tmp_path / m, tmp_path / "test.parquet", label_column="label").metrics["roc_auc"]
        for m in ("streamed", "memory")
    }
    assert auc["memory"] > 0.7, auc  # the task is learnable, so equal quality means something
    assert abs(auc["streamed"] - auc["memory"]) < 0.03, auc


def test_stream_fit_learns_what_an_in_memory_fit_learns_after_training(tmp_path):
    """The per-feature error weights of the default score and what explanations compare against."""
    from anomalia.model import Model

    df = _subtle(3000, 4)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "d.parquet", row_group_size=500)
    fit_stream(tmp_path / "d.parquet", out=tmp_path / "s", params=PARAMS, label_column="label")
    fit_file(tmp_path / "d.parquet", out=tmp_path / "m", params=PARAMS, label_column="label")
    streamed, memory = Model.load(tmp_path / "s").detector, Model.load(tmp_path / "m").detector
    for det in (streamed, memory):
        weight = det.net_.feature_weight.detach().numpy()
        assert not np.allclose(weight, 1.0) and det.feature_scale_ is not None
        assert det.feature_low_ is not None and np.all(det.feature_low_ <= det.feature_high_)
    np.testing.assert_allclose(streamed.feature_median_, memory.feature_median_, atol=0.2)


def test_stream_fit_on_the_command_line_and_its_errors(tmp_path, capsys):
    df = _subtle(3000, 3)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "d.parquet", row_group_size=500)
    df.to_csv(tmp_path / "d.csv", index=False)
    args = [
        "fit",
        tmp_path / "d.parquet",
        "--stream",
        "--label-column",
        "label",
        "--out",
        tmp_path / "m",
        "--set",
        "epochs=2",
        "--set",
        "hidden=8,4",
    ]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code in (0, None)
    assert "(streamed)" in capsys.readouterr().out and (tmp_path / "m" / "anomalia.json").exists()
    for bad, needle in [(["--stream", "--key", "color"], "use one of them"), (["--stream"], "reads Parquet")]:
        data = tmp_path / ("d.csv" if needle == "reads Parquet" else "d.parquet")
        with pytest.raises(SystemExit) as exc:
            main(["fit", str(data), *bad, "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_ddp_two_processes_follow_the_single_process_loss_curve(tmp_path):
    pytest.importorskip("torch.distributed")
    mixed_frame(2000, seed=4).drop(columns="label").to_parquet(tmp_path / "d.parquet", index=False)
    sets = ["--set", "epochs=4", "--set", "hidden=8,4", "--set", "batch_size=100"]
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "anomalia",
        "fit",
        str(tmp_path / "d.parquet"),
        "--ddp",
        "--out",
        str(tmp_path / "ddp"),
        *sets,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    single = fit_file(
        tmp_path / "d.parquet", out=tmp_path / "one", params={"epochs": 4, "hidden": (8, 4), "batch_size": 100}
    )
    ddp = json.loads(Path(tmp_path / "ddp" / "anomalia.json").read_text())["detector"]["state"]["history"][-1]
    one = single.history[-1]
    assert len(ddp["train_loss"]) == len(one["train_loss"]) == 4
    np.testing.assert_allclose(ddp["train_loss"], one["train_loss"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ddp["val_loss"], one["val_loss"], rtol=0, atol=1e-4)


def test_ddp_outside_torchrun_is_a_one_line_error(tmp_path, capsys):
    mixed_frame(100).to_parquet(tmp_path / "d.parquet", index=False)
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(tmp_path / "d.parquet"), "--ddp", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "runs under torchrun" in err and len(err.strip().splitlines()) == 1


def test_python_dash_m_anomalia_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "anomalia", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "fit" in proc.stdout and "score" in proc.stdout
