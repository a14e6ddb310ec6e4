"""Spark: score a DataFrame with a model folder through ``mapInArrow``, the pattern Spark users know.

Each Python worker loads the folder once by path (a shared or fsspec location every executor reads) and
scores the Arrow batches Spark hands it with the steps of local scoring, so the scores, p-values, flags
and contributions equal ``anomalia score``'s for the same rows. Spark has no row order, so there is no
``row`` column: the input's columns (``keep``, default all) travel along instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from .._core import InputError, SchemaError
from .._core.optional import require
from ..data import BATCH_ROWS
from ..model import EXPLAIN_OPTIONS
from ..results import Contributions
from .engine import _model_url
from .keyed import ModelIndex
from .options import ScoreOptions
from .partitions import input_columns, load_cached, score_batch_stream, set_threads


def score(
    df: Any,
    model: str,
    *,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Any:
    """Score the Spark DataFrame ``df`` with the model folder ``model`` (or a folder of per-key models).

    Returns a DataFrame with the ``keep`` columns (default: every column of ``df``), ``score``, ``p_value``,
    ``is_anomaly`` and ``top_feature_i`` (string) / ``top_share_i`` for i = 1..``top_k``. Lazy, like every
    Spark transformation; each task's Python worker loads the model once.
    """
    types = require("pyspark.sql.types", "spark", purpose="scoring on Spark")
    if explain not in EXPLAIN_OPTIONS:
        raise InputError(f"explain must be one of {list(EXPLAIN_OPTIONS)}; got {explain!r}")
    url = _model_url(model)
    m = load_cached(url)
    opts = ScoreOptions(explain, top_k, (), batch_rows)
    keep = list(df.columns) if keep is None else list(keep)
    needed = [*input_columns(m, opts), *keep]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise SchemaError(f"the DataFrame has no column(s) {missing}; its columns are {df.columns[:10]}")
    first = m.any_model() if isinstance(m, ModelIndex) else m
    if first.input_kind != "table":
        raise InputError(f"{first.name!r} is a {first.input_kind} model; Spark scoring takes table models")
    k = min(top_k, len(first.input_columns))
    fields = [df.schema[c] for c in keep]
    fields += [
        types.StructField("score", types.DoubleType()),
        types.StructField("p_value", types.DoubleType()),
        types.StructField("is_anomaly", types.BooleanType()),
    ]
    for i in range(1, k + 1):
        fields += [
            types.StructField(f"top_feature_{i}", types.StringType()),
            types.StructField(f"top_share_{i}", types.FloatType()),
            *(types.StructField(f"top_{f}_{i}", types.DoubleType()) for f in Contributions.VALUE_FIELDS),
        ]
    threads = int(df.sparkSession.conf.get("spark.task.cpus", "1"))
    read = list(dict.fromkeys([*input_columns(m, opts), *keep]))

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        set_threads(threads)
        yield from score_batch_stream(url, batches, opts, keep)

    return df.select(*read).mapInArrow(score_partition, types.StructType(fields))


__all__ = ["score"]
