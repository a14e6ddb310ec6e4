"""Micro-batching: concurrent requests wait a short, bounded time to share one forward pass.

The first request of a batch waits at most ``max_wait`` seconds (or until ``max_rows`` rows are pending);
everything gathered by then goes to the model as one table, scored in a worker thread while the next batch
gathers. Under light load a request waits ``max_wait`` at most; under heavy load the batches grow and the
throughput with them, instead of one pass per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One request's part of a batch: its payload, its row count and the future its answer goes to."""

    payload: Any
    rows: int
    future: asyncio.Future[Any] = field(repr=False)


class MicroBatcher:
    """Gather submitted jobs into batches and run ``run(jobs) -> answers`` on them in ``executor``.

    Parameters
    ----------
    run : callable
        Takes a list of :class:`Job` and returns one answer (or an exception instance, raised to that
        job's caller) per job, in order. Runs in ``executor``.
    executor : Executor
        Where ``run`` runs (one thread keeps the scoring of batches in order and leaves the event loop free).
    max_wait : float
        Seconds the first job of a batch waits for others (0 = take only what is already pending).
    max_rows : int
        Rows at which a batch is cut without waiting further.
    on_batch : callable, optional
        Called with each batch's row count (metrics).
    """

    def __init__(
        self,
        run: Callable[[list[Job]], Sequence[Any]],
        executor: Executor,
        *,
        max_wait: float = 0.002,
        max_rows: int = 512,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_wait < 0 or max_rows < 1:
            raise ValueError(f"max_wait must be >= 0 and max_rows >= 1; got {max_wait!r}, {max_rows!r}")
        self.run, self.executor = run, executor
        self.max_wait, self.max_rows, self.on_batch = max_wait, max_rows, on_batch
        self._pending: list[Job] = []
        self._rows = 0
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, payload: Any, rows: int) -> Any:
        """Queue one job and wait for its answer (its exception is raised here)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake, self._full = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._loop())
        job = Job(payload, rows, loop.create_future())
        self._pending.append(job)
        self._rows += rows
        assert self._wake is not None and self._full is not None
        self._wake.set()
        if self._rows >= self.max_rows:
            self._full.set()
        answer = await job.future
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def close(self) -> None:
        """Stop the gathering task (pending jobs get a CancelledError)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in self._pending:
            if not job.future.done():
                job.future.cancel()
        self._pending.clear()

    def _take(self) -> list[Job]:
        batch, rows = [], 0
        while self._pending and (not batch or rows + self._pending[0].rows <= self.max_rows):
            job = self._pending.pop(0)
            batch.append(job)
            rows += job.rows
        self._rows -= rows
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None and self._full is not None
        while True:
            await self._wake.wait()
            if self.max_wait > 0 and self._rows < self.max_rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            batch = self._take()
            if not self._pending:
                self._wake.clear()
            if self._rows < self.max_rows:
                self._full.clear()
            batch = [j for j in batch if not j.future.cancelled()]  # callers that went away
            if not batch:
                continue
            if self.on_batch is not None:
                self.on_batch(sum(j.rows for j in batch))
            try:
                answers = await loop.run_in_executor(self.executor, self.run, batch)
            except Exception as exc:  # a bug in run: every caller hears of it, the loop carries on
                log.exception("micro-batch failed")
                answers = [exc] * len(batch)
            for job, answer in zip(batch, answers, strict=True):
                if not job.future.done():
                    job.future.set_result(answer)
