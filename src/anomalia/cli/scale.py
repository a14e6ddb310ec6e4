"""The scale-out flags of ``anomalia fit`` and ``anomalia score`` (``--engine``, ``--scheduler``, ``--workers``,
``--key``, ``--stream``, ``--ddp``): parse, call :mod:`anomalia.scale`, print. Heavy imports stay inside the
functions, so the command line starts as fast without them."""

from __future__ import annotations

import logging
from typing import Any

from .._core import InputError


def _quiet_dask() -> None:
    """Dask's own start/stop messages are not the user's business on the command line; its errors are."""
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.ERROR)


def wants_engine(model_dir: str, engine: str | None, scheduler: str | None, workers: int | None) -> bool:
    """Whether ``score`` goes through :mod:`anomalia.scale`: an engine asked for, or a folder of per-key models."""
    if engine is None and (scheduler is not None or workers is not None):
        raise InputError("--scheduler and --workers go with --engine dask")
    if engine is not None:
        return True
    from ..scale.keyed import is_model_index

    return is_model_index(model_dir)


def score(
    model_dir: str,
    data: str,
    out: str,
    *,
    engine: str | None,
    scheduler: str | None,
    workers: int | None,
    explain: str,
    top_k: int,
    keep: list[str],
    batch_rows: int,
    progress: Any,
) -> Any:
    """``anomalia score MODEL DATASET --out OUT/ --engine dask``: a Parquet dataset, one part per partition."""
    from ..scale.engine import score_to_dataset

    _quiet_dask()

    return score_to_dataset(
        model_dir,
        data,
        out,
        engine or "local",
        scheduler,
        workers,
        explain=explain,
        top_k=top_k,
        keep=keep,
        batch_rows=batch_rows,
        progress=progress,
    )


def fit(
    opts: dict[str, Any],
    *,
    key: str | None,
    engine: str | None,
    scheduler: str | None,
    workers: int | None,
    stream: bool,
    ddp: bool,
    fit_options: dict[str, Any],
) -> list[tuple[str, Any]] | None:
    """The scaled fits; returns the rows of the summary table (None: not a scaled fit)."""
    if not (key or engine or scheduler or workers or stream or ddp):
        return None
    if sum(bool(x) for x in (key, stream, ddp)) > 1:
        raise InputError("--key, --stream and --ddp are different ways to fit; use one of them")
    if engine is not None and not key:
        raise InputError("--engine applies to per-key fits (--key COLUMN); --stream and --ddp run where they start")
    if (scheduler is not None or workers is not None) and engine != "dask":
        raise InputError("--scheduler and --workers go with --engine dask")
    data, out = str(opts["data"]), str(opts["out"])
    if key:
        from ..scale.fitkeys import fit_by_key

        _quiet_dask()

        res = fit_by_key(
            data, key=key, out=out, engine=engine or "local", scheduler=scheduler, workers=workers, **fit_options
        )
        rows: list[tuple[str, Any]] = [
            ("detector", res.detector),
            ("data", f"{data} ({res.n_rows:,} rows)"),
            ("models", f"{len(res.models)}, one per {res.key}"),
            ("engine", res.engine),
            ("seconds", res.seconds),
            ("saved to", f"{res.path} (index anomalia-index.json)"),
        ]
        return rows
    if stream:
        from ..scale.stream import fit_stream

        result = fit_stream(data, out=out, **fit_options)
    else:
        from ..scale.ddp import fit_ddp, rank

        result = fit_ddp(data, out=out, **fit_options)
        if rank() != 0:
            return []
    return [
        ("detector", result.detector),
        ("data", f"{result.data} ({result.n_rows:,} rows)"),
        ("trained on", f"{result.n_train:,} rows" + (" (streamed)" if stream else "")),
        ("held out for calibration", f"{result.n_calibration:,} rows"),
        ("epochs", result.epochs),
        ("threshold", f"{result.threshold} → score > {result.threshold_value:.4f}"),
        ("seconds", result.seconds),
        ("saved to", str(result.path)),
    ]
