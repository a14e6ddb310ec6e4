"""Getting a Dask client: a running scheduler by address, a local cluster of single-threaded worker
processes, or the client the caller already has. Failures become one-line :class:`InputError` messages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from .._core import InputError, ParameterError
from .._core.optional import require

log = logging.getLogger(__name__)

#: Engines ``score_dataset`` / ``fit_by_key`` run on.
ENGINES = ("dask", "local")
#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 10
#: Dask settings of the workers a local cluster starts (measured on the benchmark machine, see
#: docs/scale.md). The statistical profiler samples the running task's stack every 10 ms in the worker's
#: event loop: it added a quarter to a scoring worker's CPU time and held the GIL from the task meanwhile.
#: The event-loop tick (20 ms), memory monitor (100 ms) and system monitor (500 ms) cost an idle worker 2 %
#: of a core; at 1 s, 1 s and 2 s they cost 0.3 %. Workers you start yourself: see :data:`WORKER_ENV`.
WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}
#: The same settings as environment variables, for ``dask worker`` processes started by hand or by a
#: cluster manager (``env ... dask worker ADDRESS --nthreads 1``).
WORKER_ENV = {"DASK_" + k.upper().replace(".", "__").replace("-", "_"): str(v) for k, v in WORKER_CONFIG.items()}


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {list(ENGINES)}; got {engine!r} (Spark: anomalia.scale.spark)")
    return engine


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` (``tcp://host:8786``), or to a new local cluster of
    ``workers`` single-threaded worker processes, or the current client (else a local cluster with one
    single-threaded worker process per core). A cluster started here is closed on leaving."""
    distributed = require("distributed", "dask", purpose="running on Dask")
    if scheduler is not None and workers is not None:
        raise InputError("give either --scheduler ADDRESS (a running cluster) or --workers N (a local one), not both")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1; got {workers}")
    if scheduler is not None:
        _check_reachable(scheduler)
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({first[:160]}); start one with `dask scheduler` "
                "or use --workers N for a local cluster"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers is None:
        try:
            current = distributed.get_client()
        except ValueError:
            current = None
        if current is not None:
            yield current
            return
        workers = _cores()
    dask = require("dask", "dask", purpose="running on Dask")
    # the nanny's MALLOC_TRIM_THRESHOLD_=65536 made torch scoring 1.6-2.5x slower in a worker (it switches off
    # glibc's adaptive mmap threshold, so every batch's tensors are mapped afresh); the thread caps stay
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()}
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ, **WORKER_CONFIG}),
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _check_reachable(address: str) -> None:
    """Fail at once, with the fix, when nothing listens at a ``tcp://host:port`` address (instead of retrying
    for the whole connect timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        raise InputError(f"--scheduler takes an address like tcp://HOST:8786; got {address!r}")
    try:
        port = parts.port or 8786
    except ValueError:
        raise InputError(f"--scheduler takes an address like tcp://HOST:8786; got {address!r}") from None
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc}); start one with "
            "`dask scheduler` or use --workers N for a local cluster"
        ) from None


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
