"""A real Uvicorn server for the service tests: an application served on a free loopback port from a thread
of the test process, stopped after."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``app`` under Uvicorn (h11 or httptools, asyncio loop) on 127.0.0.1:``port``."""

    def __init__(self, app: Any) -> None:
        uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", loop="asyncio",
                                lifespan="on", access_log=False, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"uvicorn-{self.port}")
        self.thread.start()
        end = time.time() + 30
        while not self.server.started:
            if time.time() > end or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


# ------------------------------------------------------------------------------------------------ small models
def fit_table_model(folder: Any) -> Any:
    """A small tabular autoencoder on the mixed table (numbers, text, boolean) the file tests use."""
    from anomalia.workflows import fit_file

    from tabular_files import FAST, mixed_frame, write

    data = write(mixed_frame(400), folder / "train.csv")
    fit_file(data, out=folder / "table", params=FAST, label_column="label")
    return folder / "table"


def series_frame(n: int = 600, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({
        "time": pd.date_range("2026-01-01", periods=n, freq="1min"),
        "cpu": np.sin(t / 10) + 0.05 * rng.normal(size=n),
        "mem": np.cos(t / 15) + 0.05 * rng.normal(size=n),
    })


def fit_series_model(folder: Any) -> Any:
    """A small window autoencoder on a two-channel timed series."""
    from anomalia.detectors import WindowAutoEncoder
    from anomalia.model import Model

    det = WindowAutoEncoder(window=8, time_column="time", epochs=2, hidden=(8,), random_state=0)
    det.fit(series_frame())
    Model(det, name="series").save(folder / "series")
    return folder / "series"


def points(frame: Any) -> list[dict[str, Any]]:
    """Rows of a series frame as the ingest route's JSON points."""
    return [{"time": t.isoformat(), "cpu": float(c), "mem": float(m)}
            for t, c, m in zip(frame["time"], frame["cpu"], frame["mem"], strict=True)]


_MODELS: dict[str, Any] = {}


def shared_models(tmp_path_factory: Any) -> dict[str, Any]:
    """The small table and series models, fitted once per test session (the tests only read them)."""
    if not _MODELS:
        folder = tmp_path_factory.mktemp("serve-models")
        _MODELS.update(table=fit_table_model(folder), series=fit_series_model(folder))
    return _MODELS


RECORD = {"a": 0.1, "b": -0.3, "color": "red", "ok": True, "c": 0.2}
