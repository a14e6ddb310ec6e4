"""Scale-out: the same pure scoring and fitting steps driven on Dask (and Spark), per key, and on data
larger than memory.

- :func:`score_dataset`: a partitioned dataset scored on a Dask cluster (each worker loads the model folder
  once, by path), a Dask DataFrame of the results; :mod:`anomalia.scale.spark` does it with ``mapInArrow``.
- :func:`fit_by_key`: one model per key (host, machine) in parallel, a folder per key plus an index that
  scoring routes rows by.
- :func:`fit_stream`: training from shuffled Parquet row-group batches, memory bounded by a buffer.
- :mod:`anomalia.scale.ddp`: data-parallel training under ``torchrun`` (gloo on CPU, NCCL on GPUs).

Dask, pyspark and fsspec are optional (``pip install 'anomalia[dask]'``, ``'anomalia[spark]'``); importing
this package loads none of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENGINES", "ModelIndex", "fit_by_key", "fit_stream", "is_model_index", "score_dataset", "score_to_dataset"]

_WHERE = {
    "ENGINES": "cluster",
    "ModelIndex": "keyed",
    "is_model_index": "keyed",
    "fit_by_key": "fitkeys",
    "fit_stream": "stream",
    "score_dataset": "engine",
    "score_to_dataset": "engine",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'anomalia.scale' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
