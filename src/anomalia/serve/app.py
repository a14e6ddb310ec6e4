"""The ASGI application: routes, micro-batched scoring, series ingest, the response engine's alerts, metrics,
the dashboard. :func:`create_app` builds it for a :class:`~anomalia.serve.registry.ModelRegistry` (or model
folders); ``anomalia serve`` runs it under Uvicorn.

Routes (all but ``/healthz`` and ``/readyz`` need the bearer token when a token file is given):

- ``POST /v1/models/{name}/score`` — JSON ``{"records": [...]}``, or a CSV / Parquet / Arrow IPC body by
  content type, or a PNG / JPEG image or ``{"images": [...]}`` for image models → ``{"results": [...]}``;
- ``POST /v1/models/{name}/ingest/{key}`` — points of a series for stream ``key`` (state checkpointed);
- ``GET /v1/models``, ``GET /v1/models/{name}``, ``POST /v1/models/{name}/reload`` and ``/rollback``,
  ``GET /v1/models/{name}/streams``;
- ``GET /v1/alerts``, ``GET /v1/alerts/{id}``, ``GET /v1/incidents``,
  ``POST /v1/alerts/{id}/ack|resolve|false-positive|new-normal``;
- ``GET /v1/events`` (server-sent events for the dashboard), ``GET /metrics``, ``GET /healthz``,
  ``GET /readyz``, ``GET /`` (the dashboard).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa

from .._core import AnomaliaError
from .._core.optional import require
from ..results import ScoredRows
from .batcher import Job, MicroBatcher
from .bodies import (
    ARROW_FILE,
    ARROW_STREAM,
    IMAGE,
    JSON,
    PARQUET,
    TABLE_TYPES,
    Records,
    ServiceError,
    check_arrays,
    check_images,
    check_records,
    check_table,
    json_list,
    media_type,
    merge_records,
    parse_json,
    read_image,
    read_table,
)
from .events import EventHub
from .metrics import ServiceMetrics
from .registry import Loaded, ModelEntry, ModelRegistry
from .security import BodyLimit, RequestMetrics, TokenAuth, read_tokens
from .streams import StreamStore

fastapi = require("fastapi", "serve", purpose="the scoring service")
from fastapi import Body, Query, Request  # noqa: E402  (after the check that says how to install it)
from fastapi import Path as PathParam  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import HTMLResponse, Response, StreamingResponse  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

log = logging.getLogger(__name__)

#: Severity of a flagged row from its p-value (the response engine's defaults): critical, major, else minor.
DEFAULT_SEVERITY = {"critical": 1e-4, "major": 1e-3}
#: Feedback actions on an alert (the route's last segment).
FEEDBACK = ("ack", "resolve", "false-positive", "new-normal")
#: Points kept per stream for the dashboard's chart.
RECENT_POINTS = 600
ARROW_OUT = "application/vnd.apache.arrow.stream"


@dataclass
class ServiceSettings:
    """Limits and tuning of one service.

    Attributes
    ----------
    max_body : int
        Largest request body in bytes (413 above it, refused before it is read whole).
    max_records : int
        Most records (rows, points, images) in one request (413 above it).
    batch_wait : float
        Seconds a single-record request waits for others to share its forward pass.
    batch_rows : int
        Rows at which a micro-batch is cut.
    micro_rows : int
        Requests of at most this many records go through the micro-batcher; larger ones are scored alone.
    state_dir : path
        Folder of the series state checkpoints (``streams.sqlite``).
    cors_origins : list of str
        Origins allowed by CORS (none by default: CORS off).
    deliver_every : float
        Seconds between two drains of the response engine's outbox into its sinks (0: leave delivery to
        ``anomalia alerts deliver --follow``).
    """

    max_body: int = 10 * 1024 * 1024
    max_records: int = 100_000
    batch_wait: float = 0.002
    batch_rows: int = 512
    micro_rows: int = 16
    state_dir: str | Path = "anomalia-serve-state"
    cors_origins: list[str] = field(default_factory=list)
    deliver_every: float = 1.0


# ------------------------------------------------------------------------------------------------ payloads
def severities(p: np.ndarray, flags: np.ndarray, levels: dict[str, float]) -> list[str | None]:
    """Severity per row: None for rows not flagged; else the first level whose p-value bound holds, or minor."""
    out = np.full(p.shape, "minor", dtype=object)
    for name, bound in sorted(levels.items(), key=lambda kv: -kv[1]):
        out[p <= bound] = name
    out[~np.asarray(flags, dtype=bool)] = None
    return out.tolist()


def _observed(inputs: Any, name: str, i: int) -> Any:
    if isinstance(inputs, Records):
        vals = inputs.values.get(name)
        return None if vals is None else vals[i]
    if isinstance(inputs, pa.Table) and name in inputs.schema.names:
        return inputs.column(name)[i].as_py()
    return None


def result_rows(scored: ScoredRows, start: int, stop: int, inputs: Any, levels: dict[str, float],
                explain: bool) -> list[dict[str, Any]]:
    """The per-record answers of rows ``start:stop`` (row numbers relative to ``start``)."""
    score = scored.score[start:stop]
    p = scored.p_value[start:stop]
    flags = scored.is_anomaly[start:stop]
    sev = severities(p, flags, levels)
    out = [
        {"row": i, "score": s, "p_value": pv, "is_anomaly": f, "severity": v}
        for i, (s, pv, f, v) in enumerate(zip(score.tolist(), p.tolist(), flags.tolist(), sev, strict=True))
    ]
    c = scored.contributions
    if explain and c is not None:
        idx, share = c.index[start:stop], c.share[start:stop]
        for i in np.flatnonzero(idx[:, 0] >= 0).tolist():
            out[i]["contributions"] = [
                {"feature": c.names[j], "share": float(s), "value": _observed(inputs, c.names[j], i)}
                for j, s in zip(idx[i].tolist(), share[i].tolist(), strict=True)
                if j >= 0
            ]
    return out


def _dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


# ------------------------------------------------------------------------------------------------ the service
class Service:
    """Everything one application holds: models, batchers, executors, stream store, responder, events."""

    def __init__(
        self,
        registry: ModelRegistry,
        settings: ServiceSettings,
        responder: Any = None,
    ) -> None:
        self.registry, self.settings, self.responder = registry, settings, responder
        self.metrics = ServiceMetrics()
        self.events = EventHub()
        self.streams = StreamStore(settings.state_dir)
        self.levels = _severity_levels(responder)
        self.micro_pool = ThreadPoolExecutor(1, thread_name_prefix="anomalia-micro")
        self.bulk_pool = ThreadPoolExecutor(2, thread_name_prefix="anomalia-bulk")
        self.ingest_pool = ThreadPoolExecutor(1, thread_name_prefix="anomalia-ingest")
        self.respond_pool = ThreadPoolExecutor(1, thread_name_prefix="anomalia-respond")
        self.batchers: dict[str, MicroBatcher] = {}
        self.recent: dict[tuple[str, str], deque[list[Any]]] = {}
        self.ready = False
        for entry in registry:
            self.batchers[entry.name] = MicroBatcher(
                self._run_micro,
                self.micro_pool,
                max_wait=settings.batch_wait,
                max_rows=settings.batch_rows,
                on_batch=self.metrics.batch.labels(entry.name).observe,
            )

    async def close(self) -> None:
        for b in self.batchers.values():
            await b.close()
        for pool in (self.micro_pool, self.bulk_pool, self.ingest_pool, self.respond_pool):
            pool.shutdown(wait=True, cancel_futures=True)

    async def deliver_forever(self, every: float) -> None:
        """Drain the outbox into the sinks every ``every`` seconds (in the response engine's thread)."""
        from ..respond import Deliverer

        deliverer = Deliverer(self.responder)
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.respond_pool, deliverer.run_once)
                self._outbox_metric()
            except Exception:
                log.exception("delivering the outbox failed; trying again in %s s", every)
            await asyncio.sleep(every)

    # -------------------------------------------------------------- scoring
    def _run_micro(self, jobs: list[Job]) -> list[Any]:
        """One forward pass for a micro-batch (jobs of one model; grouped by version around a reload)."""
        groups: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(id(job.payload[0]), []).append(i)
        answers: list[Any] = [None] * len(jobs)
        for members in groups.values():
            part = [jobs[i] for i in members]
            try:
                got = self._score_records(part)
            except ServiceError:
                got = []
                for job in part:  # one bad request must not fail its neighbours: score each alone
                    try:
                        got.extend(self._score_records([job]))
                    except ServiceError as exc:
                        got.append(exc)
            for i, answer in zip(members, got, strict=True):
                answers[i] = answer
        return answers

    def _score_records(self, jobs: Sequence[Job]) -> list[bytes]:
        loaded: Loaded = jobs[0].payload[0]
        parts: list[Records] = [j.payload[1] for j in jobs]
        modes = {j.payload[2] for j in jobs}
        explain = "all" if "all" in modes else "flagged" if "flagged" in modes else "none"
        top_k = max(j.payload[3] for j in jobs)
        table = merge_records(parts)
        scored = self._score(loaded, table, explain=explain, top_k=top_k)
        out, start = [], 0
        for job, part in zip(jobs, parts, strict=True):
            rows = result_rows(scored, start, start + part.n, part, self.levels, job.payload[2] != "none")
            out.append(_dumps({"model": loaded.model.name, "version": loaded.model.version, "results": rows}))
            start += part.n
        self._after_scoring(loaded, scored, table)
        return out

    def _score(self, loaded: Loaded, data: Any, **kw: Any) -> ScoredRows:
        try:
            return loaded.model.score(data, **kw)
        except AnomaliaError as exc:
            raise ServiceError(422, f"{exc}. The model {loaded.model.name!r} expects {_expects(loaded)}") from None

    def _after_scoring(self, loaded: Loaded, scored: ScoredRows, inputs: Any, key: str = "records") -> None:
        """Metrics, the dashboard's recent points, and the response engine (in its own thread)."""
        name = loaded.model.name
        n = len(scored)
        self.metrics.rows.labels(name).inc(n)
        flagged = np.flatnonzero(scored.is_anomaly)
        if flagged.size:
            for sev in severities(scored.p_value[flagged], scored.is_anomaly[flagged], self.levels):
                self.metrics.flags.labels(name, sev).inc()
        self._remember(name, key, scored, None)
        if self.responder is not None:
            self.respond_pool.submit(self._respond, scored, inputs, None)

    def _remember(self, name: str, key: str, scored: ScoredRows, values: np.ndarray | None) -> None:
        buf = self.recent.get((name, key))
        if buf is None:
            buf = self.recent[(name, key)] = deque(maxlen=RECENT_POINTS)
        n = len(scored)
        times = scored.time if scored.time is not None else None
        start = max(0, n - RECENT_POINTS)
        now = time.time()
        new = []
        for i in range(start, n):
            t = str(times[i]) if times is not None else now
            v = None if values is None else [float(x) for x in values[i][:4]]
            new.append([t, float(scored.score[i]), bool(scored.is_anomaly[i]), v])
        buf.extend(new)
        if self.events.active:
            self.events.publish_threadsafe("points", {"model": name, "key": key, "points": new})

    def _respond(self, scored: ScoredRows, inputs: Any, entity: str | None) -> list[dict[str, Any]]:
        """Hand scored rows to the response engine; the alerts it raised, as dicts (metrics and events too)."""
        if isinstance(inputs, Records):
            inputs = inputs.to_arrow()
        try:
            result = self.responder.process(scored, inputs=inputs,
                                            entity=None if entity is None else [entity] * len(scored))
        except Exception:
            log.exception("the response engine failed on %d scored rows", len(scored))
            return []
        alerts = [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in getattr(result, "alerts", [])]
        for a in alerts:
            self.metrics.alerts.labels(str(a.get("severity", "unknown"))).inc()
        if alerts:
            self.events.publish_threadsafe("alerts", {"alerts": alerts})
        self._outbox_metric()
        return alerts

    def _outbox_metric(self) -> None:
        store = getattr(self.responder, "store", None)
        if store is not None and hasattr(store, "outbox_depth"):
            try:
                self.metrics.outbox.set(store.outbox_depth())
            except Exception:
                log.exception("could not read the outbox depth")

    async def score_request(self, entry: ModelEntry, body: bytes, media: str, explain: str, top_k: int,
                            maps: bool, arrow_out: bool) -> bytes | tuple[bytes, str]:
        loaded = entry.current
        kind = loaded.model.input_kind
        limit = self.settings.max_records
        if kind == "images":
            if media in IMAGE:
                images = read_image(body, loaded.model)
            elif media == JSON:
                images = check_images(json_list(parse_json(body), "images", limit), loaded.model)
            else:
                raise ServiceError(
                    415, f"an image model takes {list(IMAGE)} or JSON {{\"images\": [...]}}; got {media}",
                    "content-type",
                )
            return await self._bulk(self._score_images, loaded, images, maps)
        if kind == "series":
            raise ServiceError(
                422, f"{entry.name!r} is a series model: post its points to /v1/models/{entry.name}/ingest/{{key}}",
                "name",
            )
        if media == JSON:
            items = json_list(parse_json(body), "records", limit)
            if loaded.columns is None:
                X = check_arrays(items, int(loaded.model.detector.n_features_in_))
                return await self._bulk(self._score_bulk, loaded, X, None, explain, top_k, arrow_out)
            records = check_records(items, loaded.columns, self._keep())
            if records.n <= self.settings.micro_rows and not arrow_out:
                return await self.batchers[entry.name].submit((loaded, records, explain, top_k), records.n)
            return await self._bulk(self._score_bulk, loaded, records.to_arrow(), records, explain, top_k, arrow_out)
        if media in TABLE_TYPES:
            table = await self._bulk(read_table, body, media, limit)
            check_table(table, loaded.columns)
            return await self._bulk(self._score_bulk, loaded, table, table, explain, top_k, arrow_out)
        raise ServiceError(
            415, f"unsupported content type {media!r}; send application/json, text/csv, {PARQUET[0]}, "
            f"{ARROW_STREAM[0]} or {ARROW_FILE[0]}", "content-type",
        )

    async def _bulk(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.bulk_pool, fn, *args)

    def _keep(self) -> tuple[str, ...]:
        entity = getattr(getattr(self.responder, "config", None), "entity", None)
        return (entity,) if isinstance(entity, str) else ()

    def _score_bulk(self, loaded: Loaded, data: Any, inputs: Any, explain: str, top_k: int,
                    arrow_out: bool) -> bytes | tuple[bytes, str]:
        scored = self._score(loaded, data, explain=explain, top_k=top_k)
        self._after_scoring(loaded, scored, inputs if inputs is not None else data)
        if arrow_out:
            table = scored.to_arrow()
            table = table.append_column("severity", pa.array(severities(scored.p_value, scored.is_anomaly,
                                                                        self.levels), pa.string()))
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            return sink.getvalue().to_pybytes(), ARROW_OUT
        rows = result_rows(scored, 0, len(scored), inputs, self.levels, explain != "none")
        return _dumps({"model": loaded.model.name, "version": loaded.model.version, "results": rows})

    def _score_images(self, loaded: Loaded, images: np.ndarray, maps: bool) -> bytes:
        scored = self._score(loaded, images, maps=maps)
        self._after_scoring(loaded, scored, None)
        rows = result_rows(scored, 0, len(scored), None, self.levels, False)
        if maps and scored.anomaly_map is not None:
            for i, r in enumerate(rows):
                r["anomaly_map"] = np.round(scored.anomaly_map[i], 5)
        return _dumps({"model": loaded.model.name, "version": loaded.model.version, "results": rows})

    # -------------------------------------------------------------- series ingest
    async def ingest_request(self, entry: ModelEntry, key: str, body: bytes, media: str) -> bytes:
        loaded = entry.current
        limit = self.settings.max_records
        if not key or len(key) > 200:
            raise ServiceError(422, "the stream key must be 1 to 200 characters", "key")
        if loaded.model.input_kind == "table":  # records of one entity: scored, alerts carry the key
            if media == JSON:
                items = json_list(parse_json(body), "points", limit)
                if loaded.columns is None:
                    data: Any = check_arrays(items, int(loaded.model.detector.n_features_in_))
                    inputs: Any = None
                else:
                    inputs = check_records(items, loaded.columns, self._keep())
                    data = inputs.to_arrow()
            elif media in TABLE_TYPES:
                data = inputs = await self._bulk(read_table, body, media, limit)
                check_table(data, loaded.columns)
            else:
                raise ServiceError(415, f"unsupported content type {media!r}; send JSON {{\"points\": [...]}}")
            return await self._ingest_call(self._ingest_table, loaded, key, data, inputs)
        if loaded.model.input_kind != "series":
            raise ServiceError(422, f"{entry.name!r} is an image model: post images to /v1/models/{entry.name}/score")
        if media == JSON:
            frame = self._points_frame(json_list(parse_json(body), "points", limit), loaded)
        elif media in TABLE_TYPES:
            frame = (await self._bulk(read_table, body, media, limit)).to_pandas()
        else:
            raise ServiceError(415, f"unsupported content type {media!r}; send JSON {{\"points\": [...]}}")
        return await self._ingest_call(self._ingest_series, loaded, key, frame)

    async def _ingest_call(self, fn: Callable[..., Any], *args: Any) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self.ingest_pool, fn, *args)

    def _points_frame(self, items: list[Any], loaded: Loaded) -> Any:
        import pandas as pd

        model = loaded.model
        channels = model.channels
        time_column = getattr(model.detector, "time_column", None)
        need = [*([time_column] if time_column else []), *channels]
        if model.detector.schema_.columns:
            for i, p in enumerate(items):
                if not isinstance(p, dict):
                    raise ServiceError(422, f"points[{i}] must be an object with {need}", f"points[{i}]")
                missing = [c for c in need if c not in p]
                if missing:
                    raise ServiceError(422, f"points[{i}] lacks {missing} (the model reads {need})",
                                       f"points[{i}].{missing[0]}")
            cols: dict[str, list[Any]] = {}
            for c in need:
                vals = [p[c] for p in items]
                if c != time_column:
                    for i, v in enumerate(vals):
                        if v is not None and not (isinstance(v, int | float) and not isinstance(v, bool)):
                            raise ServiceError(422, f"points[{i}].{c} must be a number; got {v!r}", f"points[{i}].{c}")
                    vals = [np.nan if v is None else float(v) for v in vals]
                else:
                    try:  # read as the model read its time column at fit (Unix seconds, day-first dates...)
                        vals = list(model.detector.timestamps(pd.DataFrame({c: vals})))  # type: ignore[attr-defined]
                    except (ValueError, TypeError) as exc:
                        raise ServiceError(422, f"points[].{c} must be timestamps: {exc}", c) from None
                cols[c] = vals
            return pd.DataFrame(cols)
        return check_arrays(items, len(channels))  # unnamed channels: each point a list of numbers

    def _ingest_series(self, loaded: Loaded, key: str, frame: Any) -> bytes:
        model = loaded.model
        det = model.detector
        time_column = getattr(det, "time_column", None)
        with self.streams.advance(model.name, key, det.new_stream) as slot:
            before = slot.state
            if time_column and before.last_time is not None and hasattr(frame, "columns") \
                    and time_column in frame.columns:
                import pandas as pd

                try:
                    first = pd.Timestamp(pd.to_datetime(frame[time_column].iloc[0]))
                    stale = first <= pd.Timestamp(before.last_time)
                except (TypeError, ValueError):
                    stale = False
                if stale:
                    raise ServiceError(
                        409, f"stream {key!r} is already at {before.last_time}; these points start at {first}: "
                        "send only points after it (an ingest that was answered is never applied twice)", "points",
                    )
            try:
                scores, after = det.score_stream(frame, before)
                flags, after = det.decide_stream(scores, after)
            except AnomaliaError as exc:
                raise ServiceError(422, f"{exc}. The model {model.name!r} expects {_expects(loaded)}") from None
            slot.set(after, model.version)
        n = scores.size
        warm = max(0, det.span - 1 - before.n_seen)
        p = det.calibrator_.p_values(scores)
        p[:warm] = 1.0
        times = None
        if hasattr(frame, "columns") and time_column in getattr(frame, "columns", ()):
            times = np.asarray(frame[time_column].astype(str))[-n:] if len(frame) >= n else None
        scored = ScoredRows(
            score=scores, p_value=p, is_anomaly=np.asarray(flags, dtype=bool),
            row=np.arange(before.n_seen, before.n_seen + n, dtype=np.int64),
            time=times, time_name=time_column or "time", model_name=model.name, model_version=model.version,
        )
        values = np.asarray(frame[model.channels] if hasattr(frame, "columns") else frame, dtype=np.float64)[-n:]
        self.metrics.rows.labels(model.name).inc(n)
        sev = severities(p, scored.is_anomaly, self.levels)
        for s in sev:
            if s is not None:
                self.metrics.flags.labels(model.name, s).inc()
        self._remember(model.name, key, scored, values)
        alerts: list[dict[str, Any]] = []
        if self.responder is not None:
            import pandas as pd

            inputs = pa.Table.from_pandas(pd.DataFrame(values, columns=model.channels), preserve_index=False)
            alerts = self.respond_pool.submit(self._respond, scored, inputs, key).result()
        points = [
            {"step": int(r), "score": s, "p_value": pv, "is_anomaly": f, "severity": v, "warmup": int(r) < det.span - 1}
            for r, s, pv, f, v in zip(scored.row.tolist(), scores.tolist(), p.tolist(), scored.is_anomaly.tolist(), sev,
                                      strict=True)
        ]
        if times is not None:
            for pt, t in zip(points, times.tolist(), strict=True):
                pt["time"] = t
        return _dumps({"model": model.name, "version": model.version, "key": key, "n_seen": after.n_seen,
                       "threshold": _threshold_value(det), "results": points,
                       "alerts": [a.get("id") for a in alerts]})

    def _ingest_table(self, loaded: Loaded, key: str, data: Any, inputs: Any) -> bytes:
        scored = self._score(loaded, data, explain="flagged", top_k=3)
        self.metrics.rows.labels(loaded.model.name).inc(len(scored))
        self._remember(loaded.model.name, key, scored, None)
        alerts: list[dict[str, Any]] = []
        if self.responder is not None:
            alerts = self.respond_pool.submit(self._respond, scored, inputs if inputs is not None else data,
                                              key).result()
        rows = result_rows(scored, 0, len(scored), inputs, self.levels, True)
        return _dumps({"model": loaded.model.name, "version": loaded.model.version, "key": key, "results": rows,
                       "alerts": [a.get("id") for a in alerts]})


def _threshold_value(det: Any) -> float | None:
    try:
        return float(det.fitted_threshold().threshold_)
    except (AttributeError, TypeError, ValueError):
        return None


def _expects(loaded: Loaded) -> str:
    if loaded.columns is not None:
        return "records with " + ", ".join(f"{c.name} ({c.kind})" for c in loaded.columns[:20])
    m = loaded.model
    if m.input_kind == "series":
        t = getattr(m.detector, "time_column", None)
        return "points with " + ", ".join([*([f"{t} (time)"] if t else []), *(f"{c} (number)" for c in m.channels)])
    if m.input_kind == "table":
        return f"records of {m.detector.n_features_in_} numbers"
    return "images"


def _severity_levels(responder: Any) -> dict[str, float]:
    """The response engine's p-value cuts (critical, major) when it runs, else the same defaults."""
    sev = getattr(getattr(responder, "config", None), "severity", None)
    if isinstance(sev, tuple | list) and len(sev) == 2:
        return {"critical": float(sev[0]), "major": float(sev[1])}
    return dict(DEFAULT_SEVERITY)


class FastScore:
    """The hot path, as pure ASGI: ``POST /v1/models/{name}/score`` with a JSON body and no query string goes
    straight to :meth:`Service.score_request` (the same checks and answers as the FastAPI route, which still
    serves every other case and documents the route), without building a Request or resolving parameters."""

    PREFIX = "/v1/models/"
    SUFFIX = "/score"

    def __init__(self, app: Any, service: Service, endpoint: Any) -> None:
        self.app, self.service, self.endpoint = app, service, endpoint

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string")
                or not path.startswith(self.PREFIX) or not path.endswith(self.SUFFIX)):
            return await self.app(scope, receive, send)
        name = path[len(self.PREFIX) : -len(self.SUFFIX)]
        ctype = None
        for k, v in scope["headers"]:
            if k == b"content-type":
                ctype = v.decode("latin-1")
            elif k == b"accept" and ARROW_OUT.encode() in v:
                return await self.app(scope, receive, send)
        media = media_type(ctype)
        if "/" in name or media != JSON:
            return await self.app(scope, receive, send)
        scope["endpoint"], scope["path_params"] = self.endpoint, {"name": name}
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            entry = self.service.registry.get(name)
            out: Any = await self.service.score_request(entry, body, media, "flagged", 3, False, False)
            status = 200
        except ServiceError as exc:
            out, status = _dumps(exc.to_dict()), exc.status
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})


# ------------------------------------------------------------------------------------------------ OpenAPI
_RECORD_SCHEMA = {
    "type": "object",
    "required": ["records"],
    "properties": {
        "records": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "additionalProperties": {"type": ["number", "string", "boolean", "null"]}},
            "description": "One object per record: column -> value, the columns the model was fitted on.",
        }
    },
}
_POINTS_SCHEMA = {
    "type": "object",
    "required": ["points"],
    "properties": {
        "points": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "additionalProperties": {"type": ["number", "string", "null"]}},
            "description": "Points of the series in time order: the time column (if any) and each channel.",
        }
    },
}
_FEEDBACK_SCHEMA = {
    "type": "object",
    "properties": {"who": {"type": "string"}, "comment": {"type": "string"}},
}
_TABLE_BODIES = {t: {"schema": {"type": "string", "format": "binary"}} for t in TABLE_TYPES}
_IMAGE_BODIES = {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE}
_ERRORS = {
    s: {"description": d, "content": {JSON: {"schema": {"type": "object", "properties": {
        "error": {"type": "string"}, "field": {"type": "string"}}}}}}
    for s, d in [(401, "No or wrong bearer token"), (404, "No such model or alert"),
                 (413, "Body or records over the limit"), (415, "Unsupported content type"),
                 (422, "Invalid body, or records that do not fit the model")]
}


# ------------------------------------------------------------------------------------------------ the app
def create_app(
    models: ModelRegistry | Sequence[str | Path],
    respond: Any = None,
    token_file: str | Path | None = None,
    *,
    names: Sequence[str] | None = None,
    settings: ServiceSettings | None = None,
) -> Any:
    """The service's ASGI application (a FastAPI app).

    Parameters
    ----------
    models : ModelRegistry or list of model folders
        What to serve; folders are named by ``names`` or by their own names.
    respond : path, mapping, ResponseConfig or Responder, optional
        The response engine's configuration (``response.yaml``), or a ready :class:`Responder`: flagged rows
        raise alerts; the alert routes read its store. Without it the alert routes answer 404.
    token_file : path, optional
        File of bearer tokens (one per line); without it no route needs a token (bind to loopback then).
    settings : ServiceSettings, optional
        Limits and tuning.
    """
    settings = settings or ServiceSettings()
    if isinstance(models, ModelRegistry):
        registry = models
    else:
        registry = ModelRegistry.from_paths(list(models), list(names or []))
    responder = _responder(respond)
    tokens = read_tokens(token_file) if token_file is not None else None
    service = Service(registry, settings, responder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        service.events.bind(asyncio.get_running_loop())
        delivering = None
        if responder is not None and settings.deliver_every > 0 and responder.config.sinks:
            delivering = asyncio.get_running_loop().create_task(service.deliver_forever(settings.deliver_every))
        try:
            yield
        finally:
            if delivering is not None:
                delivering.cancel()
            service.ready = False
            await service.close()

    app = fastapi.FastAPI(
        title="anomalia scoring service",
        version=__import__("anomalia").__version__,
        description="Scores, decisions and explanations from anomalia models; alerts from the response engine.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service

    def answer(payload: Any, status: int = 200) -> Any:
        if isinstance(payload, tuple):
            return Response(payload[0], status_code=status, media_type=payload[1])
        if not isinstance(payload, bytes):
            payload = _dumps(payload)
        return Response(payload, status_code=status, media_type=JSON)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Any:
        return answer(exc.to_dict(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
        msg = f"{where or 'request'}: {first.get('msg', 'invalid')}"
        return answer({"error": msg, "field": where or None}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        return answer({"error": str(exc.detail)}, exc.status_code)

    Name = PathParam(..., description="The model's name (GET /v1/models lists them).", max_length=200)

    # ---------------------------------------------------------------- health
    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    async def healthz() -> Any:
        return answer({"status": "ok"})

    @app.get("/readyz", tags=["health"], summary="Readiness: models loaded and the service started")
    async def readyz() -> Any:
        if not service.ready:
            return answer({"status": "starting"}, 503)
        return answer({"status": "ready", "models": registry.names()})

    # ---------------------------------------------------------------- models
    @app.get("/v1/models", tags=["models"], summary="The served models")
    async def list_models() -> Any:
        return answer({"models": [
            {"name": e.name, "version": e.model.version, "input_kind": e.model.input_kind,
             "detector": e.model.detector.name, "previous_version": None if e.previous is None
             else e.previous.model.version}
            for e in registry
        ]})

    @app.get("/v1/models/{name}", tags=["models"], summary="A model's manifest: version, schema, threshold, training",
             responses={404: _ERRORS[404]})
    async def get_model(name: str = Name) -> Any:
        return answer(registry.get(name).manifest())

    @app.post("/v1/models/{name}/reload", tags=["models"], responses={404: _ERRORS[404]},
              summary="Load the model's folder again and swap the new version in atomically")
    async def reload_model(name: str = Name) -> Any:
        entry = registry.get(name)
        old, new = await asyncio.get_running_loop().run_in_executor(None, entry.reload)
        service.metrics.reloads.labels(name, "reload").inc()
        log.info("model %s reloaded: %s -> %s", name, old, new)
        return answer({"name": name, "version": new, "previous_version": old})

    @app.post("/v1/models/{name}/rollback", tags=["models"], responses={404: _ERRORS[404]},
              summary="Swap the previous version back in")
    async def rollback_model(name: str = Name) -> Any:
        entry = registry.get(name)
        left, now = entry.rollback()
        service.metrics.reloads.labels(name, "rollback").inc()
        return answer({"name": name, "version": now, "previous_version": left})

    @app.get("/v1/models/{name}/streams", tags=["models"], responses={404: _ERRORS[404]},
             summary="The model's streams (keys) with their recent points, for the dashboard")
    async def list_streams(name: str = Name, points: int = Query(200, ge=0, le=RECENT_POINTS)) -> Any:
        entry = registry.get(name)
        keys = {k["key"]: k for k in service.streams.keys(name)}
        for (m, key) in service.recent:
            if m == name and key not in keys:
                keys[key] = {"key": key}
        out = []
        for key, info in sorted(keys.items()):
            recent = list(service.recent.get((name, key), ()))[-points:] if points else []
            out.append({**info, "points": recent})
        return answer({"model": name, "threshold": _threshold_value(entry.model.detector), "streams": out})

    # ---------------------------------------------------------------- scoring
    @app.post(
        "/v1/models/{name}/score",
        tags=["scoring"],
        summary="Score records (JSON, CSV, Parquet, Arrow IPC) or images",
        openapi_extra={"requestBody": {"required": True, "content": {
            JSON: {"schema": _RECORD_SCHEMA}, **_TABLE_BODIES, **_IMAGE_BODIES}}},
        responses={k: v for k, v in _ERRORS.items() if k != 401},
    )
    async def score(
        request: Request,
        name: str = Name,
        explain: Literal["flagged", "all", "none"] = Query("flagged", description="Rows that get contributions"),
        top_k: int = Query(3, ge=1, le=50, description="Contributing features per explained row"),
        maps: bool = Query(False, description="Images: also answer each image's anomaly map"),
    ) -> Any:
        entry = registry.get(name)
        body = await request.body()
        accept = request.headers.get("accept", "")
        out = await service.score_request(entry, body, media_type(request.headers.get("content-type")), explain,
                                          top_k, maps, ARROW_OUT in accept)
        return answer(out)

    @app.post(
        "/v1/models/{name}/ingest/{key}",
        tags=["scoring"],
        summary="Points of series `key`: scored from the key's checkpointed stream state",
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _POINTS_SCHEMA},
                                                                     **_TABLE_BODIES}}},
        responses={**{k: v for k, v in _ERRORS.items() if k != 401},
                   409: {"description": "Points not after the stream's last step"}},
    )
    async def ingest(
        request: Request,
        name: str = Name,
        key: str = PathParam(..., description="The stream's key (entity)", min_length=1, max_length=200),
    ) -> Any:
        entry = registry.get(name)
        body = await request.body()
        return answer(await service.ingest_request(entry, key, body, media_type(request.headers.get("content-type"))))

    # ---------------------------------------------------------------- alerts
    def store() -> Any:
        if responder is None:
            raise ServiceError(404, "the service runs without a response engine: start it with --respond response.yaml")
        return responder.store

    Status = Query(None, description="firing, acknowledged, resolved, suppressed", max_length=40)
    Severity = Query(None, description="critical, major, minor", max_length=40)
    Entity = Query(None, description="The entity (series key)", max_length=200)
    Since = Query(None, description="Only those that started since: a duration back (1h, 30m) or an ISO 8601 time",
                  max_length=64)

    def dicts(items: Any) -> list[dict[str, Any]]:
        return [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in items]

    async def in_respond_thread(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(service.respond_pool, lambda: fn(*args, **kw))
        except ServiceError:
            raise
        except (ValueError, KeyError, LookupError) as exc:
            raise ServiceError(422, str(exc)) from None

    @app.get("/v1/alerts", tags=["alerts"], summary="Alerts from the response engine's store")
    async def list_alerts(status: str | None = Status, severity: str | None = Severity, entity: str | None = Entity,
                          since: str | None = Since, limit: int = Query(200, ge=1, le=5000)) -> Any:
        s = store()
        items = await in_respond_thread(s.list_alerts, status=status, severity=severity, entity=entity,
                                        since=since, limit=limit)
        return answer({"alerts": dicts(items)})

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], summary="One alert", responses={404: _ERRORS[404]})
    async def get_alert(alert_id: str = PathParam(..., max_length=64)) -> Any:
        return answer((await find_alert(alert_id)).to_dict())

    async def find_alert(alert_id: str) -> Any:
        s = store()
        try:
            return await asyncio.get_running_loop().run_in_executor(service.respond_pool, s.get_alert, alert_id)
        except (ValueError, LookupError):
            raise ServiceError(404, f"no alert with id {alert_id!r} in the store", "alert_id") from None

    @app.get("/v1/incidents", tags=["alerts"], summary="Incidents (consecutive flags of one fingerprint)")
    async def list_incidents(status: str | None = Status, severity: str | None = Severity,
                             entity: str | None = Entity, since: str | None = Since,
                             limit: int = Query(200, ge=1, le=5000)) -> Any:
        s = store()
        items = await in_respond_thread(s.list_incidents, status=status, entity=entity, since=since,
                                        limit=None if severity else limit)
        if severity:
            items = [i for i in items if i.severity == severity][:limit]
        return answer({"incidents": dicts(items)})

    FEEDBACK_BODY = Body(None, description="Who gives the feedback and why: {\"who\": ..., \"comment\": ...}")

    def feedback_route(action: str) -> None:
        async def act(alert_id: str = PathParam(..., max_length=64),
                      body: dict[str, Any] | None = FEEDBACK_BODY) -> Any:
            body = body or {}
            who = body.get("who") if isinstance(body.get("who"), str) and body["who"].strip() else "api"
            comment = body.get("comment") if isinstance(body.get("comment"), str) else None
            await find_alert(alert_id)
            alert = await in_respond_thread(responder.feedback, alert_id, action, who=who, comment=comment)
            data = alert.to_dict()
            service.events.publish("feedback", {"alert_id": data["id"], "action": action, "alert": data})
            service._outbox_metric()
            return answer({"alert": data, "action": action})

        act.__name__ = f"alert_{action.replace('-', '_')}"
        app.post(f"/v1/alerts/{{alert_id}}/{action}", tags=["alerts"], summary=f"Feedback on an alert: {action}",
                 responses={404: _ERRORS[404]})(act)

    for action in FEEDBACK:
        feedback_route(action)

    # ---------------------------------------------------------------- live and operational
    @app.get("/v1/events", tags=["dashboard"], summary="Server-sent events: points, alerts, feedback",
             response_class=StreamingResponse)
    async def events(request: Request) -> Any:
        q = service.events.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 1000\nevent: hello\ndata: {}\n\n"
                while True:
                    try:
                        msg = await asyncio.wait_for(q.get(), 15.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            break
                        yield b": keep-alive\n\n"
                        continue
                    yield msg
            finally:
                service.events.unsubscribe(q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def metrics() -> Any:
        service._outbox_metric()
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    static = resources.files("anomalia.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Any:
        return HTMLResponse((static / "index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    # ---------------------------------------------------------------- middleware (last added = outermost)
    routes = {r.endpoint: r.path for r in app.routes if hasattr(r, "endpoint")}
    app.add_middleware(FastScore, service=service, endpoint=score)
    app.add_middleware(BodyLimit, limit=settings.max_body)
    if tokens is not None:
        app.add_middleware(TokenAuth, tokens=tokens)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"])
    app.add_middleware(RequestMetrics, metrics=service.metrics, routes=routes, models=frozenset(registry.names()))
    service.ready = True
    return app


def _responder(respond: Any) -> Any:
    """A Responder from a config path / mapping / ResponseConfig, or the Responder given."""
    if respond is None:
        return None
    if hasattr(respond, "process") and hasattr(respond, "store"):
        return respond
    try:
        from ..respond import Responder, load_config
    except ImportError as exc:
        raise ImportError(f"--respond needs the response engine (anomalia.respond): {exc}") from None
    return Responder(load_config(respond))


#: Environment variable through which ``anomalia serve --workers N`` passes its arguments to each worker.
CONFIG_ENV = "ANOMALIA_SERVE_CONFIG"


def app_from_environment() -> Any:
    """The application described by :data:`CONFIG_ENV` (JSON: models, names, respond, token_file, settings);
    the factory each Uvicorn worker process calls."""
    import json
    import os

    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise RuntimeError(f"{CONFIG_ENV} is not set; start the service with `anomalia serve`")
    cfg = json.loads(raw)
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg["threads"]))
    return create_app(cfg["models"], cfg.get("respond"), cfg.get("token_file"), names=cfg.get("names"),
                      settings=ServiceSettings(**cfg.get("settings", {})))
