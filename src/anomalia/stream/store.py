"""The watcher's state store: per-key states, source offsets and not yet delivered results, in SQLite.

The most recently used key states live in memory (an LRU of ``capacity`` keys); the others are spilled to
SQLite and read back when their key shows up again. Everything a batch changes — the states, the source
offset, the batch's results — is written in ONE SQLite transaction (:meth:`StateStore.commit`); a state
spilled between two commits goes into the same open transaction, so a crash at any moment leaves the store
as it was at the last commit. The watcher delivers (acknowledges) a batch only after its commit, and drops
the batch's results from the store in the next commit; results still in the store at start-up are the
ones whose delivery may not have happened, and are delivered again (:meth:`undelivered`). A batch's
results are one row (JSON), so a batch costs one insert whatever its size.

The file is ``state.sqlite`` in the ``--state`` folder, in WAL mode with ``synchronous=NORMAL``: a commit
survives the process being killed (``kill -9``); after a power loss the last commits may be lost, and the
messages they covered are then read and scored again.
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._core import InputError
from .online import KeyState

FILE = "state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, meta TEXT NOT NULL, ring BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (source TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (source TEXT NOT NULL, batch INTEGER NOT NULL, body TEXT NOT NULL,
                                    PRIMARY KEY (source, batch));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateStore:
    """Key states (LRU in memory, spilled to SQLite), offsets and undelivered results; see the module docstring.

    Parameters
    ----------
    folder : str or Path, optional
        The ``--state`` folder (created); None keeps everything in an in-memory SQLite database.
    capacity : int
        Key states kept in memory at most.
    window, drift_window : int
        The calibration and drift windows of the states (to read them back).
    """

    def __init__(
        self, folder: str | Path | None, *, capacity: int = 10_000, window: int = 500, drift_window: int = 200
    ) -> None:
        if capacity < 1:
            raise InputError(f"--keys-in-memory must be >= 1; got {capacity}")
        if folder is None:
            path = ":memory:"
        else:
            root = Path(folder)
            if root.exists() and not root.is_dir():
                raise InputError(f"--state {root} is a file; give a folder for the watcher's state")
            root.mkdir(parents=True, exist_ok=True)
            path = str(root / FILE)
        self.path = path
        self.capacity = int(capacity)
        self.window = int(window)
        self.drift_window = int(drift_window)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--state {folder}: {FILE} is not an SQLite file ({exc}); use another folder") from None
        self._lru: OrderedDict[str, KeyState] = OrderedDict()
        self._dirty: set[str] = set()
        self._in_tx = False
        self.spilled = 0
        self.loaded = 0
        last = self.db.execute("SELECT MAX(batch) FROM results").fetchone()[0]
        self._batch = int(last or 0)

    # ------------------------------------------------------------------ transactions
    def _begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def _write(self, key: str, state: KeyState) -> None:
        meta, ring = state.dumps()
        self._begin()
        self.db.execute("INSERT OR REPLACE INTO keys (key, meta, ring) VALUES (?, ?, ?)", (key, meta, ring))

    # ------------------------------------------------------------------ key states
    def get(self, key: str, new: Callable[[], KeyState]) -> KeyState:
        """The state of ``key``: from memory, read back from SQLite, or ``new()`` for a key not seen before."""
        state = self._lru.get(key)
        if state is not None:
            self._lru.move_to_end(key)
            return state
        row = self.db.execute("SELECT meta, ring FROM keys WHERE key = ?", (key,)).fetchone()
        if row is None:
            state = new()
        else:
            state = KeyState.loads(row[0], row[1], self.window, self.drift_window)
            self.loaded += 1
        self._lru[key] = state
        self._evict()
        return state

    def touched(self, key: str) -> None:
        """``key``'s state changed (it is written at the next commit, or when it is spilled)."""
        self._dirty.add(key)

    def _evict(self) -> None:
        while len(self._lru) > self.capacity:
            key, state = self._lru.popitem(last=False)
            if key in self._dirty:
                self._write(key, state)  # into the open transaction: committed with the next batch
                self._dirty.discard(key)
            self.spilled += 1

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM keys").fetchone()[0]) + sum(
            1 for k in self._dirty if k in self._lru
        )

    def in_memory(self) -> int:
        return len(self._lru)

    # ------------------------------------------------------------------ offsets and results
    def position(self, source: str) -> str | None:
        row = self.db.execute("SELECT position FROM offsets WHERE source = ?", (source,)).fetchone()
        return None if row is None else str(row[0])

    def undelivered(self, source: str) -> list[dict[str, Any]]:
        """Results committed but maybe not delivered (a crash between commit and delivery), oldest first."""
        rows = self.db.execute("SELECT body FROM results WHERE source = ? ORDER BY batch", (source,)).fetchall()
        return [r for row in rows for r in json.loads(row[0])]

    def known(self, source: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Of ``ids``, the ones whose results are committed (and not yet delivered), with their results."""
        wanted = set(ids)
        return {r["id"]: r for r in self.undelivered(source) if r["id"] in wanted}

    def commit(
        self,
        source: str,
        position: str | None,
        results: list[dict[str, Any]],
        delivered: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """One transaction: every changed key state, the source ``position``, the batch's ``results`` (kept until
        delivered), the removal of the results delivered before (``delivered``), and ``meta`` values."""
        self._begin()
        try:
            rows = [(key, *self._lru[key].dumps()) for key in self._dirty if key in self._lru]
            if rows:
                self.db.executemany("INSERT OR REPLACE INTO keys (key, meta, ring) VALUES (?, ?, ?)", rows)
            if delivered:
                self.db.execute("DELETE FROM results WHERE source = ?", (source,))
            if results:
                self._batch += 1
                self.db.execute(
                    "INSERT INTO results (source, batch, body) VALUES (?, ?, ?)",
                    (source, self._batch, json.dumps(results, separators=(",", ":"))),
                )
            if position is not None:
                self.db.execute("INSERT OR REPLACE INTO offsets (source, position) VALUES (?, ?)", (source, position))
            for k, v in (meta or {}).items():
                self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (k, json.dumps(v)))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        finally:
            self._in_tx = False
        self._dirty.clear()

    def meta(self, name: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def reset_keys(self) -> None:
        """Forget every key state (a new model version: calibration sets restart); committed with the next batch."""
        self._begin()
        self.db.execute("DELETE FROM keys")
        self._lru.clear()
        self._dirty.clear()

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()
