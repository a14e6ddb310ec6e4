"""A real Dask cluster for the tests: ``dask scheduler`` and two ``dask worker --nthreads 1`` processes on
loopback, started once per session in a temporary folder and stopped after; extra workers on demand."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DaskCluster:
    """A running scheduler at ``address`` and its worker processes (``procs``)."""

    address: str
    folder: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, *, nanny: bool = True, name: str | None = None) -> subprocess.Popen:
        """One more single-threaded worker; ``nanny=False`` makes it a single process that a kill ends."""
        cmd = [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1"]
        cmd += ["--no-dashboard", "--local-directory", str(self.folder / "workers")]
        if not nanny:  # a single process that a kill ends
            cmd.append("--no-nanny")
        if name:
            cmd += ["--name", name]
        from anomalia.scale.cluster import WORKER_ENV

        env = {**os.environ, **WORKER_ENV}
        proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30)

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=timeout)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def dask_cluster(folder: Path, n_workers: int = 2) -> Iterator[DaskCluster]:
    pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'anomalia[dask]'")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cluster = DaskCluster(address, folder, [scheduler])
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start")
            time.sleep(0.2)
        for i in range(n_workers):
            cluster.start_worker(name=f"w{i}")
        cluster.wait_for_workers(n_workers)
        with cluster.client() as c:  # import torch and the model code once per worker, outside the tests' time
            c.run(lambda: __import__("anomalia.scale.partitions"))
        yield cluster
    finally:
        for proc in reversed(cluster.procs):  # all at once: each worker takes a few seconds to close
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in cluster.procs:
            _stop(proc)
        shutil.rmtree(folder / "workers", ignore_errors=True)
