"""Scoring a dataset on Dask: one task per input partition, each on a worker that loads the model folder
once by path and scores the partition with the steps of local scoring (:mod:`.partitions`).

Rows are numbered across the dataset in path order (``row`` of the first file starts at 0, the next file's
at the first's row count), so a single file scores to exactly what ``anomalia score`` writes, and a
dataset to what scoring its files concatenated writes. Output: a Parquet dataset, one ``part-NNNNN.parquet``
per input partition; each part is written under a temporary name and renamed, so a task retried after its
worker died replaces the part, never mixes with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from .._core import InputError
from .._core.optional import require
from ..data import BATCH_ROWS
from ..model import EXPLAIN_OPTIONS
from ..workflows.score import ScoreResult
from .cluster import check_engine, dask_client
from .datasets import Partition, check_columns, count_rows, discover, filesystem
from .keyed import ModelIndex
from .options import ScoreOptions
from .partitions import input_columns, load_cached, output_columns, score_partition
from .tasks import count_task, score_task

log = logging.getLogger(__name__)

#: ``progress(rows_done, rows_total)`` after every finished partition.
Progress = Callable[[int, int | None], None]


def _model_url(model_dir: str | Path) -> str:
    text = str(model_dir)
    return text if "://" in text else str(Path(text).resolve())


def _prepare(
    model_dir: str | Path,
    dataset: str | Path,
    opts: ScoreOptions,
    storage_options: dict[str, Any] | None,
) -> tuple[str, Any, list[Partition]]:
    if opts.explain not in EXPLAIN_OPTIONS:
        raise InputError(f"--explain must be one of {list(EXPLAIN_OPTIONS)}; got {opts.explain!r}")
    url = _model_url(model_dir)
    model = load_cached(url)
    if not isinstance(model, ModelIndex):
        if model.input_kind == "images":  # dispatch on the model, never on what the data path looks like
            raise InputError(f"{model.name!r} is an image model; score images with `anomalia score` without --engine")
        model.detector.fitted_threshold()
    parts = discover(str(dataset), storage_options)
    check_columns(parts, input_columns(model, opts))
    return url, model, parts


def _offsets(parts: Sequence[Partition], client: Any | None) -> list[int]:
    counts: list[int | None] = [p.n_rows for p in parts]
    todo = [i for i, c in enumerate(counts) if c is None]
    if todo:  # CSV: a counting pass (Parquet has the counts in its footers)
        got = client.gather(client.map(count_task, [parts[i] for i in todo], pure=False)) if client else None
        for j, i in enumerate(todo):
            counts[i] = got[j] if got is not None else count_rows(parts[i])
    offsets, at = [], 0
    for c in counts:
        offsets.append(at)
        at += int(c or 0)
    return offsets


def _prepare_out(out: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    fs, root = filesystem(out, storage_options)
    root = root.rstrip("/")
    if fs.exists(root) and not fs.isdir(root):
        raise InputError(f"--out {out} is a file; give a folder for the Parquet dataset (one part per partition)")
    if fs.exists(root):
        names = [p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)]
        foreign = [n for n in names if not (n.startswith("part-") and n.endswith(".parquet")) and not n.startswith(".")]
        if foreign:
            raise InputError(f"--out {out} holds other files ({foreign[:3]}); give a new or empty folder")
        for n in names:
            fs.rm(f"{root}/{n}")
    else:
        fs.makedirs(root, exist_ok=True)
    return fs, root


def score_to_dataset(
    model_dir: str | Path,
    dataset: str | Path,
    out: str | Path,
    engine: str = "dask",
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] = (),
    batch_rows: int = BATCH_ROWS,
    storage_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ScoreResult:
    """Score ``dataset`` into the Parquet dataset ``out`` on ``engine``; what :func:`score_dataset` writes,
    summarised as the :class:`~anomalia.workflows.ScoreResult` the command line prints."""
    start = time.perf_counter()
    check_engine(engine)
    opts = ScoreOptions(explain, top_k, tuple(keep), batch_rows)
    url, model, parts = _prepare(model_dir, dataset, opts, storage_options)
    fs, root = _prepare_out(str(out), storage_options)
    out_url = str(out)
    done: list[dict[str, Any]] = []
    if engine == "local":
        offsets = _offsets(parts, None)
        total = offsets[-1] + int(parts[-1].n_rows or 0) if parts[-1].n_rows is not None else None
        for i, (p, off) in enumerate(zip(parts, offsets, strict=True)):
            done.append(score_partition(url, p, off, opts, out_url, i))
            if progress is not None:
                progress(sum(d["rows"] for d in done), total)
    else:
        with dask_client(scheduler, workers) as client:
            offsets = _offsets(parts, client)
            total = offsets[-1] + count_rows(parts[-1]) if parts[-1].n_rows is not None else None
            n, stamp = len(parts), time.time_ns()
            futures = client.map(  # one graph for the whole job (not one submission per partition)
                score_task,
                [url] * n,
                parts,
                offsets,
                [opts] * n,
                [out_url] * n,
                list(range(n)),
                key=[f"anomalia-score-{i}-{stamp}" for i in range(n)],
                pure=False,
            )
            try:
                for fut in futures:  # in order (as_completed would need a default client)
                    done.append(fut.result())
                    if progress is not None:
                        progress(sum(d["rows"] for d in done), total)
            except BaseException:
                client.cancel(futures)
                raise
    for name in fs.ls(root, detail=False):  # parts a dead worker left half-written
        if name.rsplit("/", 1)[-1].startswith("."):
            fs.rm(name)
    n = sum(d["rows"] for d in done)
    if n == 0:
        raise InputError(f"{dataset} has no rows to score")
    m = model.any_model() if isinstance(model, ModelIndex) else model
    threshold = m.detector.fitted_threshold().spec
    columns = list(output_columns(model, opts, _keep_types(parts, opts)).names)
    return ScoreResult(
        str(dataset),
        Path(str(out)),
        n,
        sum(d["flagged"] for d in done),
        time.perf_counter() - start,
        threshold,
        columns,
    )


def _keep_types(parts: Sequence[Partition], opts: ScoreOptions) -> dict[str, pa.DataType]:
    if not opts.keep:
        return {}
    p = parts[0]
    with p.fs.open(p.path, "rb") as f:
        if p.format == "parquet":
            import pyarrow.parquet as pq

            schema = pq.read_schema(f)
        else:
            import pyarrow.csv as pacsv

            with pacsv.open_csv(f) as reader:
                schema = reader.schema
    hive = dict(p.values)
    return {c: pa.array([hive[c]]).type if c in hive else schema.field(c).type for c in opts.keep}


def score_dataset(
    model_dir: str | Path,
    dataset: str | Path,
    out: str | Path | None = None,
    engine: str = "dask",
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] = (),
    batch_rows: int = BATCH_ROWS,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """Score every row of ``dataset`` with the model folder ``model_dir``; a Dask DataFrame of the results.

    Parameters
    ----------
    model_dir : path or URL
        A model folder (``anomalia fit``), or a folder of per-key models (``anomalia fit --key``: each row goes
        to its key's model). Workers load it by path (or URL), once per process.
    dataset : path or URL
        A (hive-)partitioned Parquet folder, a glob of CSV / Parquet files, or one file; local or any fsspec
        URL. Each file is one partition.
    out : path or URL, optional
        Write the results as a Parquet dataset here, one ``part-NNNNN.parquet`` per input partition, and
        return ``dask.dataframe.read_parquet(out)``. Without it the returned frame is lazy: computing it
        scores the partitions on the current Dask client.
    engine : {"dask", "local"}
        ``"local"`` scores the partitions one after another in this process (the same steps).
    scheduler, workers
        With ``out``: a scheduler address (``tcp://host:8786``), or a number of single-threaded worker
        processes for a local cluster; neither: the current client, else a local cluster of one worker per core.
    explain, top_k, keep, batch_rows
        As ``anomalia score``: same output columns (``row``, kept columns, ``score``, ``p_value``,
        ``is_anomaly``, ``top_feature_i`` / ``top_share_i``), rows identical to local scoring.
    storage_options : dict, optional
        fsspec options for ``dataset`` and ``out`` URLs.
    """
    dd = require("dask.dataframe", "dask", purpose="scoring on Dask")
    check_engine(engine)
    if out is not None:
        score_to_dataset(
            model_dir,
            dataset,
            out,
            engine,
            scheduler,
            workers,
            explain=explain,
            top_k=top_k,
            keep=keep,
            batch_rows=batch_rows,
            storage_options=storage_options,
        )
        return dd.read_parquet(str(out), storage_options=storage_options)
    if scheduler is not None or workers is not None:
        raise InputError("scheduler / workers apply when writing (out=...); a lazy frame runs on the current client")
    opts = ScoreOptions(explain, top_k, tuple(keep), batch_rows)
    url, model, parts = _prepare(model_dir, dataset, opts, storage_options)
    offsets = _offsets(parts, None)
    kind = model.input_kind
    meta = None if kind == "series" else output_columns(model, opts, _keep_types(parts, opts)).empty_table().to_pandas()
    return dd.from_map(
        score_task,
        [url] * len(parts),
        parts,
        offsets,
        [opts] * len(parts),
        [None] * len(parts),
        list(range(len(parts))),
        meta=meta,
        enforce_metadata=False,
    )
