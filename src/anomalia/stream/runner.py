"""The watcher: read a batch, score it, decide per key, respond; commit, then acknowledge.

For each batch, in this order (the order is the guarantee):

1. read up to ``batch`` messages (at start-up first the results committed but maybe not delivered, then the
   consumer's own pending messages, in id order); a Redis source fetches the next batch while this one is
   scored;
2. score them with the one shared model (tables: :meth:`Model.score` over the batch; series: per key,
   ``detector.score_stream`` from the key's :class:`~anomalia.StreamState`) and decide each point against
   its key's :class:`~anomalia.stream.online.KeyState` (:class:`~anomalia.stream.online.Decider`);
3. give the flagged points and the drifts to the response engine (its own transactional store; an alert is
   unique per fingerprint and message id, so scoring a message again after a crash adds no second alert);
4. at a checkpoint — a batch that did not fill (the watcher has caught up with the source),
   ``checkpoint`` messages since the last one, or ``checkpoint_ms`` after the first message not yet
   committed, whichever comes first — commit the key states, the source position and the results since
   the last checkpoint in one SQLite transaction;
5. then acknowledge those messages and write their results (Redis: one server-side transaction, exactly
   once).

So a watcher that keeps up commits every batch, and one with a backlog commits several batches at once
(each changed key state written once, one acknowledgement call); the time rule bounds what batching adds
to a message's latency by ``checkpoint_ms``, whatever the load.

A crash before 4 leaves the messages pending and the states as they were: they are scored again from the
same states, so with the same scores. A crash between 4 and 5 leaves results in the store that are
delivered at start-up; the Redis transaction only writes a result whose message it acknowledged.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputError
from ..model import Model
from .online import Decider, Online
from .sources import Message, Output, Source
from .store import StateStore
from .versions import current_version_path

log = logging.getLogger(__name__)

#: Rows in every forward pass of a table model (the last chunk of a batch padded): float32 kernels round
#: differently at different batch sizes, so a fixed size gives a message the same score in any batch.
FORWARD_ROWS = 256


@dataclass
class WatchStats:
    """What a watcher did: messages read, scored (not replayed), flagged, drifts, batches, errors, checkpoints;
    ``latencies`` holds, per batch, the seconds from its read to its acknowledgement."""

    messages: int = 0
    scored: int = 0
    replayed: int = 0
    flagged: int = 0
    drifts: int = 0
    batches: int = 0
    errors: int = 0
    alerts: int = 0
    reloads: int = 0
    checkpoints: int = 0
    started: float = field(default_factory=time.perf_counter)
    latencies: list[float] = field(default_factory=list)


class Watcher:
    """Scores a stream of messages with one model, per key (see the module docstring).

    Parameters
    ----------
    model : str or Path
        The model folder (``MODEL/``); promoted versions (``anomalia adapt``) are picked up between batches
        when ``follow_versions`` is on.
    source : Source
        Where messages come from (:func:`~anomalia.stream.sources.open_source`).
    out : Output, optional
        Where results go (:func:`~anomalia.stream.sources.open_output`).
    state : str or Path, optional
        The ``--state`` folder (SQLite); None keeps the state in memory (nothing survives a restart).
    key_field : str, optional
        The field that names the entity (``host``); None = one key for every message.
    online : Online
        The online decision settings.
    responder : object, optional
        An :class:`anomalia.respond.Responder` (``--respond``).
    batch : int
        Messages per batch at most.
    block_ms : int
        How long a read waits for messages (no longer than the checkpoint deadline while results wait for one).
    keys_in_memory : int
        Key states kept in memory; the others are spilled to the state store.
    follow_versions : bool
        Reload the model when ``anomalia adapt`` promotes a new version (or a rollback returns to one).
    checkpoint : int
        Commit and acknowledge after this many messages at most (what a crash has to score again).
    checkpoint_ms : int
        ... and at most this long after the first message not yet committed (what a checkpoint can add to
        a message's latency: 50 ms is a fifth of the 250 ms latency bar).
    """

    def __init__(
        self,
        model: str | Path,
        source: Source,
        out: Output | None = None,
        *,
        state: str | Path | None = None,
        key_field: str | None = None,
        online: Online | None = None,
        responder: Any = None,
        batch: int = 256,
        block_ms: int = 100,
        keys_in_memory: int = 10_000,
        follow_versions: bool = True,
        checkpoint: int = 2048,
        checkpoint_ms: int = 50,
    ) -> None:
        if batch < 1:
            raise InputError(f"--batch must be >= 1; got {batch}")
        if checkpoint < 1 or checkpoint_ms < 1:
            raise InputError(
                f"--checkpoint and --checkpoint-ms must be >= 1; got {checkpoint} messages, {checkpoint_ms} ms"
            )
        if block_ms < 1:
            raise InputError(f"--block-ms must be >= 1; got {block_ms}")
        self.model_path = Path(model)
        self.online = online or Online()
        self.online.check()
        self.source, self.out = source, out
        self.key_field = key_field
        self.responder = responder
        self.batch, self.block_ms = int(batch), int(block_ms)
        self.follow_versions = follow_versions
        self.checkpoint, self.checkpoint_ms = int(checkpoint), int(checkpoint_ms)
        self._pending: list[dict[str, Any]] = []
        self._pending_since: float | None = None
        self._pending_batches: list[float] = []
        self.store = StateStore(
            state, capacity=keys_in_memory, window=self.online.window, drift_window=self.online.drift_window
        )
        self._load_model()
        self.stats = WatchStats()
        self._delivered = False
        self._version_mtime = self._pointer_mtime()
        self._last_version_check = time.monotonic()

    # ------------------------------------------------------------------ model
    def _load_model(self) -> None:
        import pyarrow as pa

        self.model = Model.load(self.model_path)
        det = self.model.detector
        self.series = self.model.input_kind == "series"
        if self.model.input_kind == "images":
            raise InputError(f"{self.model_path} is an image model; a watcher scores records or series points")
        stride = int(getattr(det, "span", 1)) if self.series else 1
        self.decider = Decider(self.online, det.calibrator_.scores, det.threshold_, drift_stride=stride)
        if not self.series:
            self.columns = self.model.input_columns
            self.types = self.model.encoder.arrow_types if self.model.preprocess is not None else None
            self._numeric = bool(self.columns) and all(
                t is None or pa.types.is_floating(t) or pa.types.is_integer(t)
                for t in ((self.types or {}).get(c) for c in self.columns)
            )
        else:
            self.columns = self.model.channels
            self.time_column = getattr(det, "time_column", None)
        known = self.store.meta("model_version")
        if known is not None and known != self.model.version:
            log.warning("model version %s differs from the state's %s: key states restart", self.model.version, known)
            self.store.reset_keys()
        self.store_version = self.model.version

    def _pointer_mtime(self) -> float | None:
        path = current_version_path(self.model_path)
        return path.stat().st_mtime if path.is_file() else None

    def _check_version(self) -> None:
        if not self.follow_versions or time.monotonic() - self._last_version_check < 1.0:
            return
        self._last_version_check = time.monotonic()
        mtime = self._pointer_mtime()
        if mtime == self._version_mtime:
            return
        self._version_mtime = mtime
        self._checkpoint()  # what the old version decided is committed before the new one serves
        before = self.model.version
        self._load_model()
        if self.model.version != before:
            log.warning("model %s: now serving version %s (was %s)", self.model.name, self.model.version, before)
            self.stats.reloads += 1

    # ------------------------------------------------------------------ loop
    def run(
        self,
        *,
        stop: threading.Event | None = None,
        max_messages: int | None = None,
        idle_exit: float | None = None,
        on_batch: Callable[[WatchStats], None] | None = None,
    ) -> WatchStats:
        """Watch until ``stop`` is set, ``max_messages`` were read, the source ends, or nothing came for
        ``idle_exit`` seconds."""
        src = self.source
        src.open(self.store.position(src.name) if src.resumable else None)
        self._recover()
        backlog = src.pending()
        for start in range(0, len(backlog), self.batch):
            self._process(backlog[start : start + self.batch], replay=True)
        self._checkpoint()
        idle_since = time.monotonic()
        while not (stop is not None and stop.is_set()):
            if max_messages is not None and self.stats.messages >= max_messages:
                break
            want = self.batch if max_messages is None else min(self.batch, max_messages - self.stats.messages)
            block = self.block_ms
            if self._pending_since is not None:  # do not wait past the checkpoint's deadline
                left = self._pending_since + self.checkpoint_ms / 1000.0 - time.monotonic()
                block = max(1, min(block, int(left * 1000.0)))
            messages = src.read(want, block)
            if messages and (max_messages is None or self.stats.messages + len(messages) < max_messages):
                left_after = None if max_messages is None else max_messages - self.stats.messages - len(messages)
                ahead = self.batch if left_after is None else min(self.batch, left_after)
                src.prefetch(ahead, min(self.block_ms, self.checkpoint_ms))  # its wait cannot hold a checkpoint up
            self._check_version()
            if not messages:
                self._checkpoint()
                if src.exhausted or (idle_exit is not None and time.monotonic() - idle_since >= idle_exit):
                    break
                continue
            idle_since = time.monotonic()
            self._process(messages, replay=False)
            if len(messages) < want or len(self._pending) >= self.checkpoint or (
                self._pending_since is not None
                and time.monotonic() - self._pending_since >= self.checkpoint_ms / 1000.0
            ):
                self._checkpoint()
            if on_batch is not None:
                on_batch(self.stats)
        self._checkpoint()
        self._flush_delivered()
        return self.stats

    def _recover(self) -> None:
        left = self.store.undelivered(self.source.name)
        if left:
            log.warning("delivering %d results committed before the last stop", len(left))
            self.source.deliver(left, self.out)
            self.store.commit(self.source.name, None, [], delivered=True)

    def _flush_delivered(self) -> None:
        if self._delivered:
            self.store.commit(self.source.name, None, [], delivered=True)
            self._delivered = False

    def close(self) -> None:
        self.source.close()
        if self.out is not None:
            self.out.close()
        self.store.close()

    # ------------------------------------------------------------------ one batch
    def _process(self, messages: list[Message], *, replay: bool) -> None:
        t0 = time.perf_counter()
        src = self.source
        known = self.store.known(src.name, [m.id for m in messages]) if replay else {}
        fresh = [m for m in messages if m.id not in known]
        results, scored = self._score(fresh) if fresh else ([], None)
        if scored is not None and self.responder is not None:
            self.stats.alerts += self._respond(scored, fresh, results)
        self._pending += [*known.values(), *results]
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        self._pending_batches.append(t0)
        st = self.stats
        st.messages += len(messages)
        st.scored += len(fresh)
        st.replayed += len(known)
        st.batches += 1

    def _checkpoint(self) -> None:
        """Commit the states, the position and the results since the last checkpoint; then acknowledge them."""
        if self._pending_since is None:
            return
        src = self.source
        everything, self._pending = self._pending, []
        self.store.commit(
            src.name, src.position(), everything, delivered=self._delivered, meta={"model_version": self.model.version}
        )
        src.deliver(everything, self.out)
        self._delivered = True
        done = time.perf_counter()
        self.stats.latencies += [done - t for t in self._pending_batches]
        self.stats.checkpoints += 1
        self._pending_since, self._pending_batches = None, []

    def _keys(self, messages: list[Message]) -> list[str]:
        f = self.key_field
        if f is None:
            return [""] * len(messages)
        return [str(m.record.get(f, "")) for m in messages]

    def _score(self, messages: list[Message]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Results (one per message, in order) and what the response engine needs."""
        n = len(messages)
        keys = self._keys(messages)
        raw = np.full(n, np.nan)
        errors: dict[int, str] = {}
        good: list[int] = []
        order: dict[str, list[int]] = {}
        for i, (m, key) in enumerate(zip(messages, keys, strict=True)):
            if "__error__" in m.record:
                errors[i] = str(m.record["__error__"])
            else:
                good.append(i)
                order.setdefault(key, []).append(i)
        if self.series:
            scored_keys = {}
            for key, idx in order.items():
                state = self.store.get(key, self.decider.new_state)
                start = self.model.detector.new_stream() if state.series is None else state.series
                try:
                    s, after = self.model.detector.score_stream(self._frame([messages[i] for i in idx]), start)
                except (InputError, ValueError, TypeError) as exc:
                    for i in idx:
                        errors[i] = str(exc)
                    continue
                raw[idx] = np.asarray(s, dtype=np.float64)
                state.series = after
                self.store.touched(key)
                scored_keys[key] = idx
            order = scored_keys
        elif good:
            raw[good] = self._table_scores([messages[i] for i in good], errors, good)
            order = {k: [i for i in v if i not in errors] for k, v in order.items()}
        score = np.full(n, np.nan)
        p = np.ones(n)
        flag = np.zeros(n, dtype=bool)
        drifts: list[dict[str, Any]] = []
        todo = [(k, v) for k, v in order.items() if v]
        step = self.store.capacity  # the states of one call stay in memory (none is spilled while held)
        for start in range(0, len(todo), step):
            part = todo[start : start + step]
            states = [self.store.get(key, self.decider.new_state) for key, _ in part]
            at = [i for _, idx in part for i in idx]
            d = self.decider.decide_many(states, [raw[idx] for _, idx in part])
            score[at], p[at], flag[at] = d.score, d.p_value, d.is_anomaly
            for key, _ in part:
                self.store.touched(key)
            for event in d.drifts:
                key, idx = part[event["key"]]
                drifts.append({**event, "key": key, "id": messages[idx[event["point"]]].id})
        results: list[dict[str, Any]] = [
            {"id": m.id, "key": key, "score": a, "p_value": b, "is_anomaly": c}
            for m, key, a, b, c in zip(messages, keys, score.tolist(), p.tolist(), flag.tolist(), strict=True)
        ]
        for i, text in errors.items():
            results[i].update(score=None, p_value=None, is_anomaly=False, error=text[:300])
        st = self.stats
        st.flagged += int(flag.sum())
        st.drifts += len(drifts)
        st.errors += len(errors)
        for event in drifts:
            log.warning(
                "drift on key %r at message %s (KS %.3f > %.3f, p-values %s)%s", event["key"], event["id"],
                event["statistic"], event["critical"], event["direction"],
                ": calibration restarted" if event["rebaselined"] else "",
            )
        return results, {"score": score, "p_value": p, "flag": flag, "keys": keys, "drifts": drifts, "errors": errors}

    def _frame(self, messages: list[Message]) -> Any:
        import pandas as pd

        cols = [c for c in [self.time_column, *self.columns] if c is not None]
        data = {}
        for c in cols:
            values = [m.record.get(c) for m in messages]
            if c == self.time_column:
                data[c] = pd.to_datetime(values)
                continue
            try:  # the common case: every value a number or a number's text
                data[c] = np.array(values, dtype=np.float64)
            except (TypeError, ValueError):
                data[c] = pd.to_numeric(pd.Series(values, dtype=object), errors="raise").astype("float64")
        return pd.DataFrame(data)

    def _table(self, messages: list[Message]) -> Any:
        import pyarrow as pa

        if self._numeric:  # the common case: every column numeric, every value a number or a number's text
            get = operator.itemgetter(*self.columns)
            try:
                X = np.array([get(m.record) for m in messages], dtype=np.float64).reshape(len(messages), -1)
                return pa.table({c: X[:, j] for j, c in enumerate(self.columns)})
            except (KeyError, TypeError, ValueError):
                pass
        arrays = {}
        for c in self.columns:
            values = [m.record.get(c) for m in messages]
            typ = None if self.types is None else self.types.get(c)
            numeric = typ is None or pa.types.is_floating(typ) or pa.types.is_integer(typ)
            if numeric:
                try:  # the common case: every value a number or a number's text
                    arrays[c] = pa.array(np.array(values, dtype=np.float64))
                    continue
                except (TypeError, ValueError):
                    pass
            if numeric:
                arr = pa.array([None if v is None or v == "" else v for v in values])
                if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
                    null = pa.types.is_null(arr.type)
                    arr = pa.nulls(len(values), pa.float64()) if null else arr.cast(pa.float64())
                arrays[c] = arr
            else:
                arrays[c] = pa.array([None if v is None else str(v) for v in values]).cast(typ)
        return pa.table(arrays)

    def _table_scores(self, messages: list[Message], errors: dict[int, str], positions: list[int]) -> np.ndarray:
        import pyarrow as pa

        try:
            return self._model_scores(self._table(messages))
        except (InputError, ValueError, TypeError, pa.ArrowException):
            pass
        out = np.full(len(messages), np.nan)  # find the bad messages one by one; score the others together
        ok: list[int] = []
        for j, m in enumerate(messages):
            try:
                self._model_scores(self._table([m]))
                ok.append(j)
            except (InputError, ValueError, TypeError, pa.ArrowException) as exc:
                errors[positions[j]] = str(exc)
        if ok:
            out[ok] = self._model_scores(self._table([messages[j] for j in ok]))
        return out

    def _model_scores(self, table: Any) -> np.ndarray:
        # Every forward pass sees exactly FORWARD_ROWS rows (the last chunk padded by repeating its last row):
        # float32 kernels round differently at different batch sizes, and batches here are cut by arrival
        # times, so a message must get the same digits whichever batch it lands in (a restart re-batches).
        import pyarrow as pa

        n, b = table.num_rows, FORWARD_ROWS
        if n == 0:
            return np.empty(0)
        out = []
        for start in range(0, n, b):
            k = min(b, n - start)
            idx = np.minimum(np.arange(start, start + b), start + k - 1)
            out.append(self._forward(table.take(pa.array(idx)))[:k])
        return np.concatenate(out)

    def _forward(self, table: Any) -> np.ndarray:
        if self.model.preprocess is None and not self.model.detector.schema_.columns:
            X = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in self.columns])
            return self.model.detector.anomaly_score(X.astype(np.float32))
        return np.asarray(self.model.score(table, explain="none").score, dtype=np.float64)

    # ------------------------------------------------------------------ response
    def _respond(self, scored: dict[str, Any], messages: list[Message], results: list[dict[str, Any]]) -> int:
        from .respond import respond

        return respond(self, scored, messages, results)


def latency_quantile(stats: WatchStats, q: float) -> float:
    """A quantile of the per-batch times from read to acknowledgement (seconds)."""
    return float(np.quantile(np.asarray(stats.latencies), q)) if stats.latencies else float("nan")
