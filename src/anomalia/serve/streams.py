"""Per-key series state, checkpointed: each (model, key) stream's
:class:`~anomalia.detectors.stream_state.StreamState` lives in one SQLite row, read, advanced and written
back in one write transaction per ingest. The answer goes out only after the commit, so a service killed at
any moment and started again resumes every key exactly where its last answered ingest left it; several
worker processes serialise on the same key through SQLite's write lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..detectors.stream_state import StreamState

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (model, key)
)
"""


class StreamStore:
    """Stream states in ``folder/streams.sqlite`` (WAL; durable once an ingest's transaction commits)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "streams.sqlite"
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed row survives the process's death
            self._local.db = db
        return db

    @contextmanager
    def advance(self, model: str, key: str, new: Callable[[], StreamState]) -> Iterator[_Slot]:
        """Hold ``(model, key)``'s state for one update: read it (or ``new()``), let the caller set
        ``slot.state``, and commit it when the block exits without error (rolled back otherwise)."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT state FROM streams WHERE model = ? AND key = ?", (model, key)).fetchone()
            state = new() if row is None else StreamState.from_dict(json.loads(row[0]))
            slot = _Slot(state, row is None)
            yield slot
            if slot.changed is not None:
                db.execute(
                    "INSERT INTO streams (model, key, version, state, updated) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (model, key) DO UPDATE SET version = excluded.version, state = excluded.state, "
                    "updated = excluded.updated",
                    (model, key, slot.version, json.dumps(slot.changed.to_dict()), time.time()),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def get(self, model: str, key: str) -> StreamState | None:
        row = self._connect().execute(
            "SELECT state FROM streams WHERE model = ? AND key = ?", (model, key)
        ).fetchone()
        return None if row is None else StreamState.from_dict(json.loads(row[0]))

    def keys(self, model: str) -> list[dict[str, Any]]:
        """The keys of ``model``'s streams with their step count and last update."""
        rows = self._connect().execute(
            "SELECT key, state, updated FROM streams WHERE model = ? ORDER BY key", (model,)
        ).fetchall()
        out = []
        for key, state, updated in rows:
            d = json.loads(state)
            out.append({"key": key, "n_seen": int(d.get("n_seen", 0)), "last_time": d.get("last_time"),
                        "updated": updated})
        return out


class _Slot:
    def __init__(self, state: StreamState, fresh: bool) -> None:
        self.state, self.fresh = state, fresh
        self.changed: StreamState | None = None
        self.version = ""

    def set(self, state: StreamState, version: str) -> None:
        self.changed, self.version = state, version
