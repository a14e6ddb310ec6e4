"""Spark scoring through ``mapInArrow`` on a local[2] session: the rows local scoring gives, per-key models
routed row by row as local per-key scoring, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import anomalia as an
from anomalia._core import SchemaError
from anomalia.scale import fit_by_key
from anomalia.scale import spark as spark_scale
from anomalia.workflows import fit_file
from anomalia.workflows import score as score_local

from spark_session import spark_session
from tabular_files import FAST, mixed_frame


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    with spark_session(tmp_path_factory.mktemp("spark")) as s:
        yield s


def test_spark_scores_like_local_scoring(spark, tmp_path):
    df = mixed_frame(1200).reset_index(names="id")
    df.to_parquet(tmp_path / "data.parquet", index=False)
    fit_file(tmp_path / "data.parquet", out=tmp_path / "model", params=FAST, label_column="label", drop=["id"])
    score_local(tmp_path / "model", tmp_path / "data.parquet", tmp_path / "local.parquet", keep=["id"], explain="all")
    local = pd.read_parquet(tmp_path / "local.parquet").drop(columns="row")
    sdf = spark.read.parquet(str(tmp_path / "data.parquet"))
    got = spark_scale.score(sdf, str(tmp_path / "model"), keep=["id"], explain="all").toPandas()
    got = got.sort_values("id").reset_index(drop=True)
    assert list(got.columns) == list(local.columns)
    # the file's rows in one Arrow batch, as local scoring reads them: identical, value for value
    for column in ("score", "p_value", "is_anomaly", "top_share_1", "top_share_3"):
        np.testing.assert_array_equal(got[column].to_numpy(), local[column].to_numpy())
    assert got["top_feature_1"].tolist() == local["top_feature_1"].astype(str).tolist()
    # rows scattered over partitions land at other places in other batches: the matrix products then round
    # differently in the last bit of float32 (a row's place in its batch picks the BLAS kernel's code path)
    scattered = spark_scale.score(sdf.repartition(2), str(tmp_path / "model"), keep=["id"]).toPandas()
    scattered = scattered.sort_values("id").reset_index(drop=True)
    np.testing.assert_allclose(scattered["score"].to_numpy(), local["score"].to_numpy(), rtol=2e-6, atol=0)
    assert (scattered["is_anomaly"] == local["is_anomaly"]).all()
    with pytest.raises(SchemaError, match="no column"):
        spark_scale.score(sdf.drop("c"), str(tmp_path / "model"))


def test_spark_routes_each_row_to_its_keys_model_as_local_per_key_scoring(spark, tmp_path):
    df = mixed_frame(1200, seed=5).reset_index(names="id")
    df["host"] = np.where(df["id"] % 3 == 0, "a", "b")  # interleaved: every Arrow batch holds both keys
    df.to_parquet(tmp_path / "data.parquet", index=False)
    params = {"epochs": 2, "hidden": (8, 4), "batch_size": 64}
    fit_by_key(tmp_path / "data.parquet", key="host", out=tmp_path / "keyed", engine="local", params=params,
               drop=["id", "label"])  # fmt: skip
    # the reference: each host's rows (in file order) scored locally by that host's own model folder
    local = []
    for host, rows in df.groupby("host", sort=True):
        rows.to_parquet(tmp_path / f"{host}.parquet", index=False)
        score_local(tmp_path / "keyed" / f"host={host}", tmp_path / f"{host}.parquet", tmp_path / f"{host}-s.parquet",
                    keep=["id", "host"], explain="all")  # fmt: skip
        local.append(pd.read_parquet(tmp_path / f"{host}-s.parquet").drop(columns="row"))
    want = pd.concat(local).sort_values("id").reset_index(drop=True)
    sdf = spark.read.parquet(str(tmp_path / "data.parquet"))
    got = spark_scale.score(sdf, str(tmp_path / "keyed"), keep=["id", "host"], explain="all").toPandas()
    got = got.sort_values("id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns) and len(got) == len(df)
    # one Arrow batch holds the file: each key's rows reach its model in the order local scoring reads them
    for column in ("score", "p_value", "is_anomaly", "top_share_1", "top_share_3"):
        np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy())
    assert got["top_feature_1"].tolist() == want["top_feature_1"].astype(str).tolist()
    assert got["host"].tolist() == df["host"].tolist()
    # the models differ, so routing to the wrong one would show: the two hosts' models score a row differently
    a, b = (an.load_model(tmp_path / "keyed" / f"host={h}") for h in "ab")
    row = df.drop(columns=["id", "label", "host"]).iloc[:50]
    assert not np.allclose(a.score(row).score, b.score(row).score)
    # rows grouped by key into partitions (Spark's hash of host): same rows, in other batches (float32 rounding)
    grouped = spark_scale.score(sdf.repartition(2, "host"), str(tmp_path / "keyed"), keep=["id", "host"])
    grouped = grouped.toPandas().sort_values("id").reset_index(drop=True)
    np.testing.assert_allclose(grouped["score"].to_numpy(), want["score"].to_numpy(), rtol=2e-6, atol=0)
    assert (grouped["is_anomaly"] == want["is_anomaly"]).all() and grouped["id"].tolist() == want["id"].tolist()
    # a row whose key has no model is a one-line error naming the key
    with pytest.raises(Exception, match="no model for host 'c'"):
        spark_scale.score(spark.createDataFrame(df.assign(host="c").head(5)), str(tmp_path / "keyed")).toPandas()
