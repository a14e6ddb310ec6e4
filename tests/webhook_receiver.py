"""A real HTTP receiver on a free loopback port, owned by the test: it records every request (path,
``Idempotency-Key`` header, JSON body) and fails the ones it is told to (a rate, or the first few)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    """``fail_rate`` of the requests (seeded) or the first ``fail_first`` get ``status``; the others 200."""

    def __init__(self, *, fail_rate: float = 0.0, fail_first: int = 0, status: int = 503, seed: int = 0) -> None:
        self.fail_rate, self.fail_first, self.status = fail_rate, fail_first, status
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request, failed ones included
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    n = len(receiver.requests)
                    fail = n < receiver.fail_first or receiver.rng.random() < receiver.fail_rate
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "key": self.headers.get("Idempotency-Key"),
                            "body": json.loads(body),
                            "ok": not fail,
                        }
                    )
                self.send_response(receiver.status if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["ok"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()
