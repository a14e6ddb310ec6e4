"""Where the watcher reads messages and writes results.

Sources (``--source``):

- ``redis://HOST:PORT/DB?stream=NAME&group=G&consumer=C`` — a Redis Streams consumer group. Batches come
  from ``XREADGROUP``; at start the consumer first re-reads its own pending messages (delivered before a
  crash, never acknowledged); every ``claim_ms`` it takes over, with ``XAUTOCLAIM``, the messages another
  consumer of the group left pending longer than that. Query keys: ``stream`` (required), ``group``
  (``anomalia``), ``consumer`` (``watcher``: keep it stable, a restarted watcher finds its pending messages
  under it), ``start`` (``0``: a new group reads the stream from its start; ``$`` only new messages),
  ``claim_ms`` (30000).
- ``file:PATH`` — follow a growing CSV (``.csv``, header first) or JSON-lines file; the position is the byte
  offset after the last complete line scored.
- ``-`` — JSON lines on standard input (no resume: stdin cannot be re-read).

Outputs (``--out``): ``redis://HOST:PORT/DB?stream=NAME`` on the source's own server writes each result
(``id``, ``key``, ``score``, ``p_value``, ``is_anomaly``) in the same server-side transaction as the XACK
(a Lua script, atomic like MULTI/EXEC): the result is added only when the XACK acknowledged the message,
so a redelivered message is never written twice — exactly once, crashes included. Any other value is a
file of JSON lines, appended (at least once: results committed but not yet written when the watcher dies
are written again at start-up).

A message is a record: the fields of a stream entry (or its one field ``data`` / ``json`` holding a JSON
object), a CSV row, or a JSON object.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from .._core import InputError

REDIS_QUERY_KEYS = ("stream", "group", "consumer", "start", "claim_ms")


@dataclass
class Message:
    """One input message: its id (the source's: a stream entry id, a line number) and its record."""

    id: str
    record: dict[str, Any]


def _record(fields: dict[str, Any], where: str) -> dict[str, Any]:
    if len(fields) == 1:
        (name, value), = fields.items()
        if name in ("data", "json"):
            try:
                obj = json.loads(value)
            except (TypeError, ValueError):
                obj = None
            if not isinstance(obj, dict):
                raise InputError(f"{where}: field {name!r} must hold a JSON object")
            return obj
    return fields


def parse_redis_url(url: str, *, flag: str, need_stream: bool = True) -> dict[str, Any]:
    """``redis://HOST:PORT/DB?stream=...`` as connection arguments and query keys; a clear error otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise InputError(f"{flag} {url!r}: expected redis://HOST:PORT/DB?stream=NAME")
    try:
        port = parts.port or 6379
    except ValueError:
        raise InputError(f"{flag} {url!r}: the port is not a number") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise InputError(f"{flag} {url!r}: the database after the port must be a number (redis://host:6379/0)")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(REDIS_QUERY_KEYS))
    if unknown:
        raise InputError(f"{flag} {url!r}: unknown query key(s) {unknown}; known: {list(REDIS_QUERY_KEYS)}")
    if need_stream and not query.get("stream"):
        raise InputError(f"{flag} {url!r}: name the stream, e.g. {url.split('?')[0]}?stream=events")
    claim = query.get("claim_ms", "30000")
    if not claim.isdigit():
        raise InputError(f"{flag} {url!r}: claim_ms must be a whole number of milliseconds; got {claim!r}")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": port,
        "db": int(path or 0),
        "stream": query.get("stream", ""),
        "group": query.get("group") or "anomalia",
        "consumer": query.get("consumer") or "watcher",
        "start": query.get("start") or "0",
        "claim_ms": int(claim),
    }


def _redis_client(host: str, port: int, db: int, flag: str) -> Any:
    from .._core.optional import require

    redis = require("redis", "stream", purpose="reading Redis Streams")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=host, port=port, db=db, decode_responses=True, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise InputError(f"{flag}: cannot reach Redis at {host}:{port} ({exc}); is redis-server running?") from None
    return client


# Acknowledge each message and, only when the XACK acknowledged it, add its result: atomic on the server.
# KEYS[1] source stream, KEYS[2] output stream ('' for none); ARGV[1] group, then 5 values per message.
_ACK_AND_WRITE = """
local written = 0
for i = 2, #ARGV, 5 do
  local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if acked == 1 and KEYS[2] ~= '' then
    redis.call('XADD', KEYS[2], '*', 'id', ARGV[i], 'key', ARGV[i+1], 'score', ARGV[i+2],
               'p_value', ARGV[i+3], 'is_anomaly', ARGV[i+4])
    written = written + 1
  end
end
return written
"""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


class Source:
    """What the watcher needs of a source (see the subclasses)."""

    name: str = ""
    resumable: bool = True

    def open(self, position: str | None) -> None:
        """Connect, and carry on from ``position`` (the last committed one), when the source has positions."""

    def pending(self) -> list[Message]:
        """Messages delivered before a restart and not acknowledged (Redis), in order."""
        return []

    def read(self, count: int, block_ms: int) -> list[Message]:
        raise NotImplementedError

    def prefetch(self, count: int, block_ms: int) -> None:
        """The watcher will read again: a source may start fetching up to ``count`` messages now."""

    def position(self) -> str | None:
        """The position after the messages read so far (committed with the batch)."""
        return None

    def deliver(self, results: list[dict[str, Any]], out: Output | None) -> None:
        """After the commit: acknowledge the batch and write its results to ``out``."""
        if out is not None:
            out.write(results)

    @property
    def exhausted(self) -> bool:
        return False

    def close(self) -> None:
        pass


class Output:
    """Where results go (a JSON-lines file, a Redis stream); see :func:`open_output`."""

    def write(self, results: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JsonLinesOutput(Output):
    def __init__(self, path: str) -> None:
        target = Path(path)
        if target.is_dir():
            raise InputError(f"--out {path} is a folder; give a .jsonl file or redis://host:port/db?stream=NAME")
        if not target.parent.exists():
            raise InputError(f"--out {path}: the folder {target.parent} does not exist")
        self.file: IO[str] = target.open("a", encoding="utf-8")

    def write(self, results: list[dict[str, Any]]) -> None:
        self.file.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in results))
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class RedisOutput(Output):
    """A Redis stream of results. With a Redis source on the same server the source writes it (exactly once,
    in the XACK's transaction); otherwise results are added in one pipeline (at least once)."""

    def __init__(self, url: str) -> None:
        self.conf = parse_redis_url(url, flag="--out")
        self.client = _redis_client(self.conf["host"], self.conf["port"], self.conf["db"], "--out")
        self.stream = self.conf["stream"]

    def same_server(self, conf: dict[str, Any]) -> bool:
        return all(self.conf[k] == conf[k] for k in ("host", "port", "db"))

    def write(self, results: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for r in results:
            pipe.xadd(self.stream, {k: _text(r.get(k)) for k in ("id", "key", "score", "p_value", "is_anomaly")})
        pipe.execute()


def open_output(spec: str | None) -> Output | None:
    """``--out``: None, ``redis://...?stream=NAME`` or a JSON-lines file path."""
    if not spec:
        return None
    if spec.startswith("redis://") or "://" in spec:
        return RedisOutput(spec)
    return JsonLinesOutput(spec)


class RedisSource(Source):
    """A Redis Streams consumer group (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.conf = parse_redis_url(url, flag="--source")
        c = self.conf
        self.stream, self.group, self.consumer = c["stream"], c["group"], c["consumer"]
        self.name = f"redis://{c['host']}:{c['port']}/{c['db']}/{self.stream}/{self.group}"
        self.client: Any = None
        self._script: Any = None
        self._last_claim = 0.0
        self.claimed = 0
        self._reader: Any = None
        self._ahead: Any = None
        self._pool: Any = None
        self._buffer: list[Message] = []

    def _connect(self) -> Any:
        client = _redis_client(self.conf["host"], self.conf["port"], self.conf["db"], "--source")
        # the entries as the server sends them ([id, [field, value, ...]]), made into records in one pass
        client.set_response_callback("XREADGROUP", lambda response, **options: response)
        return client

    def open(self, position: str | None) -> None:
        from redis import ResponseError

        self.client = self._connect()
        try:
            self.client.xgroup_create(self.stream, self.group, id=self.conf["start"], mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise InputError(f"--source {self.name}: cannot create the consumer group ({exc})") from None
        self._script = self.client.register_script(_ACK_AND_WRITE)
        self._last_claim = time.monotonic()

    def _messages(self, entries: Any, gone: list[str]) -> list[Message]:
        out = []
        for mid, fields in entries or []:
            if isinstance(fields, list):
                fields = dict(zip(fields[::2], fields[1::2], strict=True))
            if not fields:  # deleted from the stream while pending: nothing to score, acknowledge it
                gone.append(mid)
                continue
            try:
                out.append(Message(mid, _record(fields, f"message {mid}")))
            except InputError as exc:
                out.append(Message(mid, {"__error__": str(exc)}))
        return out

    def _ack(self, ids: list[str]) -> None:
        if ids:
            self.client.xack(self.stream, self.group, *ids)

    def pending(self) -> list[Message]:
        out: list[Message] = []
        last = "0"
        while True:
            reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: last}, count=1000)
            entries = _entries(reply)
            if not entries:
                return out
            gone: list[str] = []
            out += self._messages(entries, gone)
            self._ack(gone)
            last = entries[-1][0]

    def read(self, count: int, block_ms: int) -> list[Message]:
        now = time.monotonic()
        if now - self._last_claim >= self.conf["claim_ms"] / 1000.0:
            self._last_claim = now
            claimed = self._claim(count)
            if claimed:
                return claimed
        if self._ahead is not None:  # it waited for messages already: an empty answer is this read's answer
            ahead, self._ahead = self._ahead, None
            self._buffer += ahead.result()
            out, self._buffer = self._buffer[:count], self._buffer[count:]
            return out
        if self._buffer:
            out, self._buffer = self._buffer[:count], self._buffer[count:]
            return out
        return self._fetch(self.client, count, block_ms)

    def _fetch(self, client: Any, count: int, block_ms: int) -> list[Message]:
        reply = client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        gone: list[str] = []
        out = self._messages(_entries(reply), gone)
        if gone:
            client.xack(self.stream, self.group, *gone)
        return out

    def prefetch(self, count: int, block_ms: int) -> None:
        """Fetch the next batch on a second connection while the watcher scores this one: the Redis server
        builds and sends it meanwhile. Fetched messages are pending for this consumer like read ones: if the
        watcher stops before scoring them, its next start reads them first."""
        if self._ahead is not None or count < 1:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anomalia-redis-read")
            self._reader = self._connect()
        self._ahead = self._pool.submit(self._fetch, self._reader, count, block_ms)

    def _claim(self, count: int) -> list[Message]:
        reply = self.client.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.conf["claim_ms"], start_id="0-0", count=count
        )
        entries = reply[1] if len(reply) > 1 else []
        deleted = list(reply[2]) if len(reply) > 2 else []
        gone: list[str] = []
        out = self._messages(entries, gone)
        self._ack(gone + deleted)
        self.claimed += len(out)
        return out

    def deliver(self, results: list[dict[str, Any]], out: Output | None) -> None:
        if not results:
            return
        exact = isinstance(out, RedisOutput) and out.same_server(self.conf)
        args: list[str] = [self.group]
        for r in results:
            args += [r["id"], _text(r.get("key")), _text(r.get("score")), _text(r.get("p_value")),
                     _text(r.get("is_anomaly"))]
        self._script(keys=[self.stream, out.stream if exact else ""], args=args)  # type: ignore[union-attr]
        if out is not None and not exact:
            out.write(results)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._reader.close()
            self._pool = self._ahead = None
        if self.client is not None:
            self.client.close()


def _entries(reply: Any) -> list[Any]:
    """The entries of an XREADGROUP reply on one stream (RESP2 ``[[name, entries]]`` or RESP3 ``{name: ...}``)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return next(iter(reply.values()))
    return reply[0][1]


class FileSource(Source):
    """Follow a growing CSV or JSON-lines file (``file:PATH``)."""

    def __init__(self, spec: str) -> None:
        path = spec[len("file:") :]
        if not path:
            raise InputError("--source file: needs a path, e.g. file:events.jsonl")
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"--source {spec}: {self.path} is not a file")
        self.name = f"file:{self.path.resolve()}"
        self.csv = self.path.suffix.lower() == ".csv"
        self.header: list[str] | None = None
        self.offset = 0
        self.line = 0
        self.file: IO[bytes] | None = None

    def open(self, position: str | None) -> None:
        self.file = self.path.open("rb")
        if self.csv:
            first = self.file.readline()
            if not first.endswith(b"\n"):
                raise InputError(f"--source file:{self.path}: a CSV file needs its header line first")
            self.header = _csv_fields(first.decode("utf-8"))
            self.offset, self.line = self.file.tell(), 1
        if position:
            offset, line = position.split(":")
            self.offset, self.line = int(offset), int(line)
        self.file.seek(self.offset)

    def read(self, count: int, block_ms: int) -> list[Message]:
        assert self.file is not None
        out: list[Message] = []
        deadline = time.monotonic() + block_ms / 1000.0
        while len(out) < count:
            start = self.file.tell()
            raw = self.file.readline()
            if not raw.endswith(b"\n"):  # end of the file so far (or half a line being written)
                self.file.seek(start)
                if out or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
                continue
            self.line += 1
            self.offset = self.file.tell()
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            out.append(Message(str(self.line), self._parse(text)))
        return out

    def _parse(self, text: str) -> dict[str, Any]:
        if self.csv:
            values = _csv_fields(text)
            assert self.header is not None
            if len(values) != len(self.header):
                return {"__error__": f"line {self.line} has {len(values)} fields; the header has {len(self.header)}"}
            return dict(zip(self.header, values, strict=True))
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return {"__error__": f"line {self.line} is not JSON ({exc})"}
        if not isinstance(obj, dict):
            return {"__error__": f"line {self.line} is not a JSON object"}
        return obj

    def position(self) -> str | None:
        return f"{self.offset}:{self.line}"

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _csv_fields(line: str) -> list[str]:
    import csv

    return next(csv.reader([line.rstrip("\r\n")]), [])


class StdinSource(Source):
    """JSON lines on standard input (``-``); ends at end of input."""

    name = "stdin"
    resumable = False

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.line = 0
        self._eof = False
        self._buf = b""

    def read(self, count: int, block_ms: int) -> list[Message]:
        out: list[Message] = []
        deadline = time.monotonic() + block_ms / 1000.0
        fd = self.stream.fileno()
        while len(out) < count and not self._eof:
            while b"\n" in self._buf and len(out) < count:
                raw, self._buf = self._buf.split(b"\n", 1)
                self._add(raw, out)
            if len(out) >= count:
                break
            wait = deadline - time.monotonic()
            if out and wait <= 0:
                break
            ready, _, _ = select.select([fd], [], [], max(wait, 0.0) if not out else 0.0)
            if not ready:
                if out or wait <= 0:
                    break
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._eof = True
                if self._buf.strip():
                    self._add(self._buf, out)
                self._buf = b""
            else:
                self._buf += chunk
        return out

    def _add(self, raw: bytes, out: list[Message]) -> None:
        self.line += 1
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            obj = json.loads(text)
        except ValueError as exc:
            obj = {"__error__": f"line {self.line} is not JSON ({exc})"}
        if not isinstance(obj, dict):
            obj = {"__error__": f"line {self.line} is not a JSON object"}
        out.append(Message(str(self.line), obj))

    @property
    def exhausted(self) -> bool:
        return self._eof and b"\n" not in self._buf

    def position(self) -> str | None:
        return str(self.line)


def open_source(spec: str) -> Source:
    """``--source``: ``redis://...``, ``file:PATH`` or ``-``; a one-line error naming what is wrong otherwise."""
    if not spec:
        raise InputError("--source is empty; give redis://host:port/db?stream=NAME, file:PATH or - (stdin)")
    if spec == "-":
        return StdinSource()
    if spec.startswith("redis://"):
        return RedisSource(spec)
    if spec.startswith("file:"):
        return FileSource(spec)
    raise InputError(
        f"--source {spec!r} is not a source this watcher reads; give redis://host:port/db?stream=NAME, "
        "file:PATH (a growing CSV or JSON-lines file) or - (JSON lines on stdin)"
    )
