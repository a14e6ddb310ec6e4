"""The work of one key in a per-key fit (a Dask task, or a step of the local loop): read that key's rows of the
dataset by path and fit the ordinary model on them into ``OUT/KEY=VALUE``. Kept apart from the orchestration
in :mod:`.fitkeys`, so that the task functions (:mod:`.tasks`) import it without a cycle."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._core import InputError
from ..bundle import read_manifest
from ..workflows import fit as fit_one
from .datasets import Partition, discover, read_batches
from .keyed import folder_name
from .partitions import set_threads


def rows_of_key(parts: Sequence[Partition], key: str, value: Any) -> pa.Table:
    """Every row whose ``key`` is ``value``, in dataset order (hive folders of other keys are skipped)."""
    tables = []
    for p in parts:
        hive = dict(p.values)
        if key in hive and hive[key] != value:
            continue
        for batch in read_batches(p, None, batch_rows=1 << 18):
            t = pa.Table.from_batches([batch])
            mask = pc.equal(t.column(key), pa.scalar(value, t.column(key).type))
            t = t.filter(mask)
            if t.num_rows:
                tables.append(t)
    if not tables:
        raise InputError(f"no rows with {key} = {value!r}")
    return pa.concat_tables(tables, promote_options="permissive")


def fit_key(
    dataset: str,
    key: str,
    value: Any,
    out: str,
    options: dict[str, Any],
    storage_options: dict[str, Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Fit the model of one key value into ``out/KEY=VALUE`` (a task: runs on any worker, or here)."""
    if threads is not None:
        set_threads(threads)
    start = time.perf_counter()
    parts = discover(dataset, storage_options)
    table = rows_of_key(parts, key, value)
    folder = Path(out) / folder_name(key, value)
    opts = dict(options)
    opts["drop"] = [key, *[d for d in opts.get("drop", ()) if d != key]]
    with tempfile.TemporaryDirectory(prefix="anomalia-key-") as tmp:
        path = Path(tmp) / "rows.parquet"
        pq.write_table(table, path)
        result = fit_one(str(path), out=str(folder), **opts)
    manifest = read_manifest(folder)
    return {
        "value": value,
        "folder": folder.name,
        "rows": int(table.num_rows),
        "seconds": time.perf_counter() - start,
        "weights_sha256": manifest.get("weights", {}).get("sha256")
        if isinstance(manifest.get("weights"), dict)
        else None,
        "version": manifest.get("version"),
        "detector": result.detector,
    }


__all__ = ["fit_key", "rows_of_key"]
