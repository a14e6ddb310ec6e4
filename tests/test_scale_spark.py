"""Spark scoring through ``mapInArrow`` on a local[2] session: the rows local scoring gives, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalia._core import SchemaError
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
