"""Pure ASGI middleware: bearer tokens (constant-time comparison), the request body limit (413 before the
body is read whole), and request metrics per route and model."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from .._core import InputError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Routes that answer without a token (load balancers and orchestrators probe them).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
COOKIE = "anomalia_token"


def read_tokens(path: str | Path) -> list[bytes]:
    """Tokens from a file: one per line; blank lines and lines starting with # are skipped."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"cannot read the token file {p}: {exc.strerror or exc}") from None
    tokens = [t.strip() for t in text.splitlines() if t.strip() and not t.strip().startswith("#")]
    if not tokens:
        raise InputError(f"the token file {p} holds no token (one per line); put at least one in it")
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise InputError(f"the token file {p} holds a token of {len(short[0])} characters; use at least 16")
    return [t.encode() for t in tokens]


async def _answer(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class TokenAuth:
    """Every route but :data:`OPEN_PATHS` needs ``Authorization: Bearer <token>`` (or the dashboard's cookie,
    set by opening ``/?token=<token>`` once). Each token is compared in constant time, all of them every time."""

    def __init__(self, app: ASGIApp, tokens: list[bytes]) -> None:
        self.app, self.tokens = app, tokens

    def _valid(self, given: bytes | None) -> bool:
        if not given:
            return False
        ok = False
        for t in self.tokens:
            ok |= hmac.compare_digest(given, t)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = None
        for k, v in scope["headers"]:
            if k == b"authorization" and v[:7].lower() == b"bearer ":
                given = v[7:].strip()
            elif k == b"cookie" and given is None:
                for part in v.split(b";"):
                    name, _, value = part.strip().partition(b"=")
                    if name == COOKIE.encode():
                        given = value
        if self._valid(given):
            return await self.app(scope, receive, send)
        query = scope.get("query_string", b"")
        if scope["path"] == "/" and query.startswith(b"token="):  # the dashboard's sign-in link
            from urllib.parse import unquote_to_bytes

            token = unquote_to_bytes(query[6:].split(b"&", 1)[0])
            if self._valid(token):
                cookie = f"{COOKIE}={token.decode('latin-1')}; HttpOnly; SameSite=Strict; Path=/".encode()
                await send({"type": "http.response.start", "status": 303,
                            "headers": [(b"location", b"/"), (b"set-cookie", cookie), (b"content-length", b"0")]})
                return await send({"type": "http.response.body", "body": b""})
        await _answer(
            send, 401, {"error": "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' "
                        "with a token from the service's token file"},
            [(b"www-authenticate", b'Bearer realm="anomalia"')],
        )


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413: at once from Content-Length, else as soon as the streamed
    body passes the limit (the rest is never read)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    size = int(v)
                except ValueError:
                    return await _answer(send, 400, {"error": "the Content-Length header is not a number"})
                if size > self.limit:
                    return await self._refuse(send, size)
                break
        seen = 0
        started = False

        async def limited() -> dict[str, Any]:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        async def tracking(msg: dict[str, Any]) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, tracking)
        except _TooLarge:
            if not started:
                await self._refuse(send, None)

    async def _refuse(self, send: Send, size: int | None) -> None:
        what = "over" if size is None else f"{size:,} bytes,"
        await _answer(
            send, 413,
            {"error": f"the request body is {what} the limit of {self.limit:,} bytes; send fewer records per request "
             "(or start the service with a larger --max-body)", "field": "body"},
            [(b"connection", b"close")],
        )


class RequestMetrics:
    """Count and time every request by route template, model and status."""

    def __init__(self, app: ASGIApp, metrics: Any, routes: dict[Any, str], models: frozenset[str]) -> None:
        self.app, self.metrics, self.routes, self.models = app, metrics, routes, models
        self._children: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def tracking(msg: dict[str, Any]) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, tracking)
        finally:
            route = self.routes.get(scope.get("endpoint"), "other")
            model = (scope.get("path_params") or {}).get("name", "")
            if model not in self.models:  # no label per unknown name a client makes up
                model = ""
            key = (route, model)
            hist = self._children.get(key)
            if hist is None:
                hist = self._children[key] = self.metrics.latency.labels(route, model)
            hist.observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, model, str(status)).inc()
