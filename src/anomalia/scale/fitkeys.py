"""One model per key (host, machine, customer), fitted in parallel: ``anomalia fit DATA --key host --out
MODELS/``. Each key's rows (in file order) are fitted by the ordinary fit (:func:`anomalia.workflows.fit`,
same detector, same options, same seed for every key) into ``MODELS/host=VALUE/``; the index
``MODELS/anomalia-index.json`` is written last. A task gets the dataset's location and a key value, never
rows or models, and returns a summary; the same key fits to the same weights on any worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from .._core import InputError
from .cluster import check_engine, dask_client
from .datasets import Partition, check_columns, discover, read_batches
from .keyed import write_index
from .keyfit import fit_key, rows_of_key
from .tasks import fit_task


@dataclass
class KeyedFitResult:
    """What a per-key fit did: the index folder, the key, and per key value its rows, seconds and weights."""

    path: Path
    key: str
    models: dict[Any, dict[str, Any]]
    seconds: float
    engine: str
    detector: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return sum(int(m["rows"]) for m in self.models.values())


def key_values(parts: Sequence[Partition], key: str) -> list[Any]:
    """The distinct values of ``key`` in the dataset, sorted (hive folders: without reading any row)."""
    values: set[Any] = set()
    for p in parts:
        hive = dict(p.values)
        if key in hive:
            values.add(hive[key])
            continue
        for batch in read_batches(p, [key], batch_rows=1 << 20):
            values.update(pc.unique(batch.column(0)).to_pylist())
    if None in values:
        raise InputError(f"the key column {key!r} has missing values; fill or drop those rows")
    return sorted(values, key=lambda v: (str(type(v)), v))


def fit_by_key(
    data: str | Path,
    *,
    key: str,
    out: str | Path,
    engine: str = "dask",
    scheduler: str | None = None,
    workers: int | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> KeyedFitResult:
    """Fit one model per value of ``key`` in ``data`` and write them with their index into ``out``.

    ``options`` are :func:`anomalia.workflows.fit`'s (``model``, ``params``, ``time_column``, ``threshold``,
    ``seed``, ...), the same for every key; ``key`` is left out of the features. ``engine="dask"`` fits the
    keys in parallel on a Dask cluster (``scheduler`` address, or ``workers`` local single-threaded worker
    processes); ``"local"`` one after another here.
    """
    start = time.perf_counter()
    check_engine(engine)
    if str(out) and "://" in str(out):
        raise InputError("--out for per-key models is a local (or shared) folder path")
    parts = discover(str(data), storage_options)
    check_columns(parts, [key], "key column")
    values = key_values(parts, key)
    if not values:
        raise InputError(f"{data} has no rows")
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    options.pop("callback", None)  # epochs of many models at once are not one progress bar
    dataset = str(data) if "://" in str(data) else str(Path(data).resolve())
    target = str(out_path.resolve())
    done: list[dict[str, Any]] = []
    if engine == "local":
        for v in values:
            done.append(fit_key(dataset, key, v, target, options, storage_options))
            if progress is not None:
                progress(len(done), len(values))
    else:
        with dask_client(scheduler, workers) as client:
            n = len(values)  # one graph for the whole job; a task gets the dataset's path and its key value
            futures = client.map(
                fit_task, [dataset] * n, [key] * n, values, [target] * n, [options] * n, [storage_options] * n,
                pure=False,
            )  # fmt: skip
            for fut in futures:  # in order (as_completed would need a default client)
                done.append(fut.result())
                if progress is not None:
                    progress(len(done), len(values))
    by_value = {d["value"]: d for d in sorted(done, key=lambda d: values.index(d["value"]))}
    detector = next(iter(by_value.values()))["detector"]
    write_index(out_path, key, {v: d["folder"] for v, d in by_value.items()}, {"detector": detector})
    return KeyedFitResult(out_path, key, by_value, time.perf_counter() - start, engine, detector)


def same_models(a: KeyedFitResult, b: KeyedFitResult) -> bool:
    """Whether two per-key fits gave the same weights for every key."""
    return set(a.models) == set(b.models) and all(
        a.models[v]["weights_sha256"] == b.models[v]["weights_sha256"] for v in a.models
    )


__all__ = ["KeyedFitResult", "fit_by_key", "fit_key", "key_values", "rows_of_key", "same_models"]
