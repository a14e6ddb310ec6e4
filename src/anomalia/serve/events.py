"""Live events for the dashboard (server-sent events): each subscriber has a bounded queue; a subscriber that
falls behind loses its oldest events rather than slowing the service."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson


class EventHub:
    """Publish JSON events to every connected dashboard."""

    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[bytes]:
        self._loop = asyncio.get_running_loop()
        q: asyncio.Queue[bytes] = asyncio.Queue(self.maxsize)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(q)

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send an event (call on the event loop; :meth:`publish_threadsafe` from other threads)."""
        if not self._subscribers:
            return
        msg = b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n\n"
        for q in list(self._subscribers):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(msg)

    def publish_threadsafe(self, kind: str, data: dict[str, Any]) -> None:
        if self._loop is not None and self._subscribers:
            self._loop.call_soon_threadsafe(self.publish, kind, data)
