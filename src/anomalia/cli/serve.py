"""``anomalia serve``: the scoring service and live dashboard (FastAPI under Uvicorn; ``anomalia[serve]``)."""

from __future__ import annotations

from typing import Annotated

import typer

from .._core import InputError


def serve(
    models: Annotated[list[str], typer.Argument(metavar="MODEL...", help="Model folder(s) written by `anomalia fit`.")],
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, help="TCP port."),
    respond: str | None = typer.Option(
        None, "--respond", help="Response file (response.yaml): flagged rows raise alerts; enables /v1/alerts."
    ),
    token_file: str | None = typer.Option(
        None, "--token-file", help="File of bearer tokens, one per line; every route but health then needs one."
    ),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes (each loads the models)."),
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Name to serve each MODEL under, in order (repeatable).")
    ] = None,
    state_dir: str = typer.Option(
        "anomalia-serve-state", "--state-dir", help="Folder of the series state checkpoints (per key)."
    ),
    max_body: int = typer.Option(10 * 1024 * 1024, "--max-body", min=1024, help="Largest request body in bytes."),
    max_records: int = typer.Option(100_000, "--max-records", min=1, help="Most records in one request."),
    batch_wait: float = typer.Option(
        0.002, "--batch-wait", min=0.0, max=0.1, help="Seconds a single-record request waits to share a pass."
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, max=256, help="Torch threads per worker (1: micro-batches are small; the event loop "
        "and the HTTP parsing use the other cores)."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="Uvicorn's log level."),
) -> None:
    """Serve models over HTTP: scores, series ingest, alerts, metrics and the live dashboard at `/`."""
    import json
    import logging
    import os
    from pathlib import Path

    from .._core.optional import require

    require("fastapi", "serve", purpose="anomalia serve")
    uvicorn = require("uvicorn", "serve", purpose="anomalia serve")
    for m in models:
        if not Path(m).is_dir():
            raise InputError(f"model folder {m} does not exist; give folders written by `anomalia fit`")
    if name and len(name) != len(models):
        raise InputError(f"{len(name)} --name value(s) for {len(models)} model folder(s); give one per folder")
    if respond is not None and not Path(respond).is_file():
        raise InputError(f"--respond {respond}: no such file; give the response file (response.yaml)")
    if token_file is None and host not in ("127.0.0.1", "::1", "localhost"):
        logging.getLogger("anomalia.serve").warning(
            "serving on %s without --token-file: anyone who can reach the port can use every route", host
        )
    import torch

    from ..serve.app import CONFIG_ENV, ServiceSettings, create_app

    torch.set_num_threads(threads)

    settings = {"state_dir": str(Path(state_dir).resolve()), "max_body": max_body, "max_records": max_records,
                "batch_wait": batch_wait}
    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    common = {"host": host, "port": port, "log_level": log_level, "loop": loop, "http": http,
              "access_log": False, "timeout_keep_alive": 30}
    if workers == 1:
        app = create_app(models, respond, token_file, names=name, settings=ServiceSettings(**settings))
        uvicorn.run(app, **common)
        return
    create_app(models, respond, token_file, names=name, settings=ServiceSettings(**settings))  # check before forking
    os.environ[CONFIG_ENV] = json.dumps({
        "models": [str(Path(m).resolve()) for m in models], "names": name,
        "token_file": token_file and str(Path(token_file).resolve()),
        "respond": respond and str(Path(respond).resolve()), "settings": settings, "threads": threads,
    })
    uvicorn.run("anomalia.serve.app:app_from_environment", factory=True, workers=workers, **common)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
