"""A real PostgreSQL server for the tests: ``initdb`` in a temporary folder, ``postgres`` on a free loopback
port, run as an unprivileged user when the tests run as root (PostgreSQL refuses to run as root).

``postgres_url`` (session) gives the server's URL; ``postgres_db`` (function) a fresh empty database on it.
Skips with a reason only when PostgreSQL's programs are not installed (``make system`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    for name in ("initdb", "postgres"):
        if shutil.which(name) is None:
            break
    else:
        return Path(shutil.which("initdb") or "").parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    """The command prefix that drops root to an unprivileged user (none when not root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "nobody", "--"]


class PostgresServer:
    """One ``postgres`` process in its own folder; :meth:`stop` ends it and removes the folder."""

    def __init__(self) -> None:
        bindir = _bin_dir()
        if bindir is None:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or `make system`)")
        self.root = Path(tempfile.mkdtemp(prefix="anomalia-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        prefix = _as_user()
        if prefix:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            os.chmod(self.root, 0o700)
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            env=env,
            cwd=self.root,
        )
        log = self.root / "postgres.log"
        self.proc = subprocess.Popen(
            [
                *prefix,
                str(bindir / "postgres"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115 (the server writes its log while it runs)
            env=env,
            cwd=self.root,
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._wait(log)

    def _wait(self, log: Path) -> None:
        import psycopg

        end = time.monotonic() + 30
        while True:
            try:
                dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
                psycopg.connect(dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if self.proc.poll() is not None or time.monotonic() > end:
                    self.stop()
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"postgres did not start: {tail}") from exc
                time.sleep(0.1)

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server (its SQLAlchemy URL)."""
    return postgres_server.create_database()
