"""``anomalia watch`` (score a live stream), ``anomalia adapt`` (absorb approved new normal data) and
``anomalia models rollback``; thin over :mod:`anomalia.stream`. Nothing heavy is imported at module level."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any

import typer
from rich.console import Console

err_console = Console(stderr=True)


def watch(
    model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder (`anomalia fit ... --out MODEL`)."),
    source: str = typer.Option(
        ..., "--source", help="redis://HOST:PORT/DB?stream=NAME[&group=G&consumer=C], file:PATH (growing CSV / "
        "JSON lines) or - (JSON lines on stdin)."
    ),
    key_field: str | None = typer.Option(None, "--key-field", help="Field naming the entity (one state per key)."),
    state: str | None = typer.Option(
        None, "--state", help="Folder for the key states and offsets (SQLite); without it nothing survives a restart."
    ),
    respond: str | None = typer.Option(None, "--respond", help="Response file (YAML): alerts for flags and drifts."),
    out: str | None = typer.Option(
        None, "--out", help="Results: redis://HOST:PORT/DB?stream=NAME (exactly once) or a .jsonl file."
    ),
    batch: int = typer.Option(256, "--batch", help="Messages per batch (scored together)."),
    checkpoint: int = typer.Option(2048, "--checkpoint", help="Commit and acknowledge at least every N messages..."),
    checkpoint_ms: int = typer.Option(50, "--checkpoint-ms", help="... and N ms after the first uncommitted one."),
    block_ms: int = typer.Option(100, "--block-ms", help="Longest wait for a batch to fill, in milliseconds."),
    keys_in_memory: int = typer.Option(10_000, "--keys-in-memory", help="Key states kept in memory (LRU)."),
    decide: str = typer.Option("conformal", "--decide", help="conformal (p <= alpha), spot:RISK, dspot:RISK, model."),
    alpha: float = typer.Option(0.01, "--alpha", help="Flag p-values at or below this (conformal decisions)."),
    window: int = typer.Option(500, "--window", help="Rolling calibration scores per key."),
    min_calibration: int = typer.Option(100, "--min-calibration", help="Scores a key needs before its own p-values."),
    smoothing: int = typer.Option(0, "--smoothing", help="EWMA span of the moving-average normalisation (0 = off)."),
    drift_window: int = typer.Option(200, "--drift-window", help="p-values per drift test (0 = no drift test)."),
    drift_level: float = typer.Option(1e-3, "--drift-level", help="False-alarm rate of one drift test."),
    drift: str = typer.Option("alert", "--drift", help="On drift: alert (default) or adapt (see --adapt)."),
    adapt: str = typer.Option("protect", "--adapt", help="protect (default), absorb (follow promoted versions) "
                              "or rebaseline (restart calibration at a drift when --drift adapt)."),
    max_messages: int | None = typer.Option(None, "--max-messages", help="Stop after this many messages."),
    idle_exit: float | None = typer.Option(None, "--idle-exit", help="Stop after this many seconds without messages."),
) -> None:
    """Score a live stream per key: at-least-once input, effectively-once output, state that survives kill -9."""
    from ..stream import Online, Watcher, open_output, open_source
    from ..stream.respond import load_responder

    online = Online(
        decide=decide, alpha=alpha, window=window, min_calibration=min_calibration, smoothing=smoothing,
        drift_window=drift_window, drift_level=drift_level, drift_policy=drift, adaptation=adapt,
    )
    online.check()
    src = open_source(source)
    output = open_output(out)
    responder = load_responder(respond) if respond else None
    watcher = Watcher(
        model_dir, src, output, state=state, key_field=key_field, online=online, responder=responder,
        batch=batch, block_ms=block_ms, keys_in_memory=keys_in_memory, follow_versions=adapt == "absorb",
        checkpoint=checkpoint, checkpoint_ms=checkpoint_ms,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    start = time.perf_counter()
    try:
        stats = watcher.run(stop=stop, max_messages=max_messages, idle_exit=idle_exit)
    finally:
        watcher.close()
    took = max(time.perf_counter() - start, 1e-9)
    err_console.print(
        f"{stats.messages:,} messages ({stats.replayed:,} replayed), {stats.flagged:,} flagged, {stats.drifts} drifts, "
        f"{stats.errors} unreadable, {stats.alerts} alerts, {stats.messages / took:,.0f} messages/s",
        highlight=False, soft_wrap=True,
    )


def adapt(
    model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder to adapt (a new version beside it)."),
    from_feedback: bool = typer.Option(
        False, "--from-feedback", help="Learn the rows marked new normal / false positive in the response store."
    ),
    respond: str | None = typer.Option(None, "--respond", help="Response file (YAML) whose store holds the feedback."),
    data: str | None = typer.Option(None, "--data", help="Or: a CSV / Parquet file of approved new-normal rows."),
    flagged: str | None = typer.Option(
        None, "--flagged", help="CSV / Parquet of recently flagged rows nobody approved (the gate checks them)."
    ),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="Promote the candidate if the gate passes."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the held-out split."),
) -> None:
    """absorb: learn approved new normal data (partial_fit with replay) as a new version, behind a gate."""
    from .._core import InputError
    from ..stream import absorb

    if from_feedback == (data is not None):
        raise InputError("give exactly one of --from-feedback (with --respond) and --data FILE")
    if from_feedback:
        if not respond:
            raise InputError("--from-feedback needs --respond response.yaml (the store that holds the feedback)")
        rows, recent = _feedback(model_dir, respond)
    else:
        rows, recent = _read(data), None  # type: ignore[arg-type]
    if flagged is not None:
        recent = _read(flagged)
    result = absorb(model_dir, rows, flagged=recent, seed=seed, promote=promote)
    g = result.gate
    verdict = "promoted" if result.promoted else ("kept as a candidate" if g.get("passed") else "refused by the gate")
    print(f"{model_dir}: version {result.candidate} {verdict} (was {result.previous})")
    for k, v in g.items():
        print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
    if not result.promoted and promote:
        sys.exit(1)


def _read(path: str) -> Any:
    import pandas as pd

    from ..data.readers import read_table

    table = read_table(path)
    return pd.DataFrame(table.to_pandas())


def _feedback(model_dir: str, respond: str) -> tuple[Any, Any]:
    import pandas as pd

    from .._core import InputError
    from ..model import Model
    from ..stream.respond import load_responder

    model = Model.load(model_dir)
    responder = load_responder(respond)
    rows = [r["inputs"] for r in responder.feedback_rows(model_name=model.name) if r.get("inputs")]
    if not rows:
        raise InputError(f"the response store of {respond} holds no new-normal or false-positive rows for {model.name}")
    columns = model.input_columns if model.input_kind == "table" else None
    frame = pd.DataFrame(rows)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"the feedback rows lack the model's column(s) {missing[:5]}; they cannot be learned")
        frame = frame[columns].apply(pd.to_numeric, errors="coerce") if model.preprocess is None else frame[columns]
    return frame, None


def rollback(model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder.")) -> None:
    """Serve the version before the current one again (`anomalia adapt` keeps every version)."""
    from ..stream import rollback as _rollback

    was, now = _rollback(model_dir)
    print(f"{model_dir}: now serving version {now} (rolled back from {was})")


def register(app: typer.Typer, models: typer.Typer) -> None:
    """Add ``watch`` and ``adapt`` to ``app`` and ``rollback`` to the ``models`` group."""
    app.command()(watch)
    app.command()(adapt)
    models.command()(rollback)
