"""The small, torch-free pieces both sides of a Dask job use: the scoring options a task carries and the
worker's thread budget (the scheduler unpickles them with every graph, so they import nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass

#: Batch size of scoring (``anomalia.data.BATCH_ROWS``; kept here so this module needs no import of it).
_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: the flags of ``anomalia score`` (explain, top-k, kept columns, batch size)."""

    explain: str = "flagged"
    top_k: int = 3
    keep: tuple[str, ...] = ()
    batch_rows: int = _BATCH_ROWS


def worker_threads() -> int | None:
    """This Dask worker's thread count (None outside a worker)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None
