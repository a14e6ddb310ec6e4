"""The functions Dask ships to workers, in a module that imports nothing heavy (their small arguments are in
:mod:`.options`).

Since ``distributed`` unpickles every submitted graph on the scheduler, a task function defined next to the
model code made the scheduler import torch and the whole model stack the first time a job was submitted
(3.5 CPU-seconds on the benchmark machine, taken from the workers' cores when they share a machine). The
scheduler only needs to unpickle these names; each function imports the scoring or fitting code when it
runs, on the worker, where it is loaded once per process.

A worker's thread budget (``--nthreads``) is honoured: torch gets that many intra-op threads, and a
single-threaded worker reads and encodes its batches in the task thread, without the reader thread local
scoring uses, so one worker process keeps to one core.
"""

from __future__ import annotations

from typing import Any

from .options import ScoreOptions, worker_threads


def score_task(model: str, part: Any, offset: int, opts: ScoreOptions, out: str | None, index: int) -> Any:
    """A partition scored on a worker, with the worker's thread budget."""
    from .partitions import score_partition

    return score_partition(model, part, offset, opts, out, index, threads=worker_threads())


def count_task(part: Any) -> int:
    """The rows of a partition (a CSV file is read through once, on the worker)."""
    from .datasets import count_rows

    return count_rows(part)


def fit_task(*args: Any) -> dict[str, Any]:
    """One key's model fitted on a worker (:func:`anomalia.scale.keyfit.fit_key`), with its thread budget."""
    from .keyfit import fit_key

    return fit_key(*args, threads=worker_threads())
