"""``anomalia`` command: thin over ``anomalia.workflows`` and ``anomalia.report``.

Each command parses its flags, calls one workflow, and prints a table; progress goes to stderr. Our own
errors (bad input, bad model folder, files that cannot be read or written) become one line on stderr and
exit code 2, as do Typer's usage errors.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._core import AnomaliaError, InputError
from . import export as _export_commands
from .alerts import alerts_app
from .serve import serve as _serve

app = typer.Typer(
    help="anomalia: deep-learning anomaly detection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

#: The keys a run file (``--config run.yaml``) may hold: the flags of ``anomalia fit`` (``set`` = ``--set``).
FIT_KEYS = (
    "data",
    "model",
    "set",
    "label_column",
    "threshold",
    "contaminated",
    "impute",
    "max_categories",
    "drop",
    "out",
    "seed",
    "time_column",
    "image_size",
    "text_column",
    "date_format",
    "dayfirst",
    "time_unit",
    "encoding",
    "delimiter",
    "decimal",
    "parts",
)


def _csv_flags() -> tuple[Any, Any, Any]:
    """``--encoding``, ``--delimiter``, ``--decimal``: how a CSV file is read, where detection guesses wrong."""
    return (
        typer.Option(None, "--encoding", help="CSV text encoding, e.g. latin-1 or cp1252 [utf-8]."),
        typer.Option(None, "--delimiter", help="CSV delimiter, e.g. ';' or '\\t' [found from the header]."),
        typer.Option(None, "--decimal", help="Decimal point of CSV numbers: '.' or ',' [',' in a ;-file of 0,5]."),
    )


ENCODING, DELIMITER, DECIMAL = _csv_flags()


def _print_version(value: bool) -> None:
    if value:
        from ..bundle import package_version  # the installed distribution's version, as manifests record it

        console.print(f"anomalia {package_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """anomalia: learn normal behaviour from normal data and flag what departs from it.

    Typical run: `anomalia fit data.csv --out model/`, then `anomalia score model/ new.csv --out scores.csv`,
    or `anomalia report model/ labelled.csv --label-column label --out report.html`.
    """


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _kv_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, _fmt(v))
    return table


class _Live:
    """Shows a progress display from its first update on, so that an error raised before any progress
    (a missing file, a wrong column) leaves only the error line; on a later error the display is removed."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.progress.start()
            self.started = True

    def __enter__(self) -> _Live:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.started:
            if kind is not None:
                self.progress.live.transient = True
            self.progress.stop()


def _row_progress(label: str) -> tuple[_Live, Any]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    task = progress.add_task(label, total=None, rate="")
    start = time.perf_counter()

    live = _Live(progress)

    def update(done: int, total: int | None) -> None:
        live.start()
        elapsed = max(time.perf_counter() - start, 1e-9)
        progress.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} rows/s")

    return live, update


# ------------------------------------------------------------------------------------------------ fit
@app.command()
def fit(
    data: str | None = typer.Argument(
        None, help="CSV or Parquet file of (mostly) normal records or a series, or an image folder (train/good/)."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Detector name (see `anomalia models`)."),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Detector argument key=value (repeatable).")] = None,
    label_column: str | None = typer.Option(
        None, help="Column with 1 = anomaly, 0 = normal: anomalies are kept out of training and fit the threshold."
    ),
    threshold: str | None = typer.Option(
        None,
        help="false-alarm:0.01 (default) | quantile:0.99 | pot:1e-4 | spot:1e-3 | best-f1 | precision:0.9 | recall:0.9",
    ),
    contaminated: bool = typer.Option(
        False,
        "--contaminated",
        help="The data may hold unlabelled anomalies: train robustly (5 %, or --set contamination=...).",
    ),
    impute: str | None = typer.Option(None, help="Fill missing values: 'median' (saved with the model)."),
    max_categories: int | None = typer.Option(None, help="Most distinct values of a one-hot text column [50]."),
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Column to ignore (repeatable).")] = None,
    out: str | None = typer.Option(None, "--out", "-o", help="Model folder to write."),
    seed: int | None = typer.Option(None, help="Random seed [0]."),
    config: str | None = typer.Option(None, "--config", "-c", help="YAML run file with the same keys as these flags."),
    image_size: str | None = typer.Option(
        None, help="Image folders (MVTec layout: train/good/): resize every image to HEIGHTxWIDTH, e.g. 128x128."
    ),
    time_column: str | None = typer.Option(
        None,
        "--time-column",
        help="Series files: the timestamp column; fits a series detector (default cnn-forecaster) on the file's "
        "other columns, in file order.",
    ),
    text_column: str | None = typer.Option(
        None,
        "--text-column",
        help="Text: the column holding one text per record; fits a text detector (default text; or text-lm). "
        "A .log file is read one record per line without it.",
    ),
    date_format: str | None = typer.Option(
        None, "--date-format", help="Series: strptime format of the time column, e.g. '%d.%m.%Y %H:%M' [inferred]."
    ),
    dayfirst: bool | None = typer.Option(
        None, "--dayfirst/--monthfirst", help="Series: read NN/NN/YYYY dates day-first [decided from the values]."
    ),
    time_unit: str | None = typer.Option(
        None, "--time-unit", help="Series: unit of a numeric (Unix) time column: s, ms, us or ns [from magnitude]."
    ),
    encoding: str | None = ENCODING,
    delimiter: str | None = DELIMITER,
    decimal: str | None = DECIMAL,
    part: Annotated[
        list[str] | None,
        typer.Option(
            "--part",
            help="Records with several parts: NAME=DETECTOR:COL[,COL...] (repeatable); fits a multimodal model, "
            "e.g. --part numbers=autoencoder:cpu,mem --part message=text:msg.",
        ),
    ] = None,
    key: str | None = typer.Option(None, "--key", help="Fit one model per value of this column (MODELS/ + index)."),
    engine: str | None = typer.Option(None, "--engine", help="With --key: dask (in parallel) or local."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="--engine dask: scheduler address tcp://HOST:8786."),
    workers: int | None = typer.Option(None, "--workers", help="--engine dask: a local cluster of N worker processes."),
    stream: bool = typer.Option(False, "--stream", help="Train from shuffled Parquet row groups (bounded memory)."),
    ddp: bool = typer.Option(False, "--ddp", help="Data-parallel training under torchrun (gloo on CPU, NCCL on GPU)."),
) -> None:
    """Learn normal behaviour from a table or series file, or an image folder, and save the model folder."""
    from ..detectors import get_detector
    from ..workflows import choose_detector, fit, load_run_file, parse_params
    from ..workflows.checks import check_fit_out, merge_params

    given = {
        "data": data,
        "model": model,
        "set": set_ or None,
        "label_column": label_column,
        "threshold": threshold,
        "contaminated": contaminated or None,
        "impute": impute,
        "max_categories": max_categories,
        "drop": drop or None,
        "out": out,
        "seed": seed,
        "time_column": time_column,
        "image_size": image_size,
        "text_column": text_column,
        "date_format": date_format,
        "dayfirst": dayfirst,
        "time_unit": time_unit,
        "encoding": encoding,
        "delimiter": delimiter,
        "decimal": decimal,
        "parts": part or None,
    }
    run = load_run_file(config, FIT_KEYS) if config else {}
    opts = {k: v if v is not None else run.get(k) for k, v in given.items()}  # flags win over the run file
    if set_ and run.get("set"):  # --set on top of the run file's set: block, key by key
        opts["set"] = merge_params(run["set"], set_)
    if opts["data"] is None:
        raise InputError("no data: give DATA (or 'data:' in the run file)")
    if opts["out"] is None:
        raise InputError("no model folder: give --out MODEL_FOLDER (or 'out:' in the run file)")
    drop_cols = opts["drop"] or []
    if opts["max_categories"] is not None and int(opts["max_categories"]) < 1:
        raise InputError(f"--max-categories must be at least 1; got {opts['max_categories']}")
    check_fit_out(str(opts["out"]))
    if opts["parts"] is not None or opts["model"] == "multimodal":  # records with several parts
        from ..workflows.multimodal import check_multimodal_flags, fit_multimodal_file

        check_multimodal_flags(opts, key=key, engine=engine, stream=stream, ddp=ddp)
        result = fit_multimodal_file(
            str(opts["data"]),
            parts=opts["parts"] or [],
            out=str(opts["out"]),
            params=opts["set"],
            label_column=opts["label_column"],
            threshold=opts["threshold"],
            seed=0 if opts["seed"] is None else int(opts["seed"]),
        )
        console.print(_kv_table("Fitted model", _fit_rows(result, bool(opts["label_column"]))))
        return
    from . import scale

    fit_options = {k: opts[k] for k in ("model", "label_column", "threshold", "impute", "time_column")}
    fit_options |= {"params": opts["set"], "contaminated": bool(opts["contaminated"]), "seed": int(opts["seed"] or 0)}
    fit_options |= {"drop": [drop_cols] if isinstance(drop_cols, str) else list(drop_cols)}
    fit_options |= {"max_categories": int(opts["max_categories"] or 50)}
    flags = {"key": key, "engine": engine, "scheduler": scheduler, "workers": workers, "stream": stream, "ddp": ddp}
    reading = ("date_format", "dayfirst", "time_unit", "encoding", "delimiter", "decimal")
    unread = ["--" + k.replace("_", "-") for k in reading if opts[k] is not None]
    if unread and any(flags.values()):
        raise InputError(
            f"{', '.join(unread)} {'is' if len(unread) == 1 else 'are'} read by a plain fit only, not by --key, "
            "--stream or --ddp fits (they read files as UTF-8 with the delimiter found from the header); convert "
            "the file first, or fit without those flags"
        )
    scaled = scale.fit(opts, **flags, fit_options=fit_options)
    if scaled is not None:
        if scaled:  # empty on the other ranks of a --ddp run: rank 0 reports
            console.print(_kv_table("Fitted models" if key else "Fitted model", scaled))
        return
    name = choose_detector(str(opts["data"]), opts["model"], opts["time_column"], opts["text_column"])
    epochs = parse_params(name, opts["set"]).get("epochs", get_detector(name)().get_params().get("epochs"))
    progress, on_epoch, live, task = _epoch_progress(name, epochs)
    with live:
        result = fit(
            str(opts["data"]),
            out=str(opts["out"]),
            model=opts["model"],
            params=opts["set"],
            label_column=opts["label_column"],
            threshold=opts["threshold"],
            contaminated=bool(opts["contaminated"]),
            impute=opts["impute"],
            max_categories=50 if opts["max_categories"] is None else int(opts["max_categories"]),
            drop=[drop_cols] if isinstance(drop_cols, str) else list(drop_cols),
            time_column=opts["time_column"],
            image_size=_image_size(opts["image_size"]),
            seed=0 if opts["seed"] is None else int(opts["seed"]),
            callback=on_epoch if epochs else None,
            text_column=opts["text_column"],
            date_format=opts["date_format"],
            dayfirst=opts["dayfirst"],
            time_unit=opts["time_unit"],
            encoding=opts["encoding"],
            delimiter=opts["delimiter"],
            decimal=opts["decimal"],
        )
        if live.started:
            progress.update(task, completed=result.epochs, total=result.epochs)
    title = "Fitted series model" if result.kind == "series" else "Fitted model"
    console.print(_kv_table(title, _fit_rows(result, bool(opts["label_column"]))))


def _epoch_progress(name: str, epochs: int | None) -> tuple[Progress, Any, _Live, Any]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]training {task.fields[name]}"),
        BarColumn(),
        TextColumn("epoch {task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
    task = progress.add_task("fit", total=epochs or 1, name=name, loss="")
    live = _Live(progress)

    def on_epoch(epoch: int, train_loss: float, val_loss: float | None) -> None:
        live.start()
        loss = f"loss {train_loss:.4f}" + (f" · val {val_loss:.4f}" if val_loss is not None else "")
        progress.update(task, completed=epoch, loss=loss)

    return progress, on_epoch, live, task


def _fit_rows(result: Any, labelled: bool) -> list[tuple[str, Any]]:
    """The fit summary: what was read, trained on and held out, the threshold, where the model went."""
    kind = result.kind
    if kind == "series":
        data = f"{result.data} ({result.n_rows:,} steps × {result.n_features} channels, step {result.step})"
        share = result.n_calibration / max(result.n_rows, 1)
        trained = f"the first {result.n_train:,} steps"
        held = f"the last {result.n_calibration:,} steps ({share:.1%} of the series; 20 %, at most about 2,000)"
    elif kind == "images":
        data = f"{result.data} ({result.n_rows:,} normal images of shape {result.image_shape})"
        trained, held = f"{result.n_train:,} images", f"{result.n_calibration:,} images"
    else:
        data = f"{result.data} ({result.n_rows:,} rows)"
        trained, held = f"{result.n_train:,} normal rows", f"{result.n_calibration:,} normal rows"
    rows: list[tuple[str, Any]] = [
        ("detector", result.detector),
        ("data", data),
        ("trained on", trained),
        ("held out for calibration", held),
    ]
    if result.time_parsing:
        from ..workflows.checks import cli_words

        rows.append(("time column", cli_words(result.time_parsing)))
    if labelled and kind == "table":
        rows.append(("labelled anomalies (not trained on)", result.n_excluded_anomalies))
    if labelled and kind == "series":
        left_out = f"{result.n_excluded_anomalies:,} steps ({result.n_excluded_windows:,} windows holding them)"
        rows.append(("labelled anomaly steps (not trained on)", left_out))
    if result.n_threshold_anomalies:
        rows.append(("threshold fitted on", f"{result.n_threshold_anomalies:,} test/<defect> images"))
    if kind == "table":
        rows.append(("input columns → features", f"{result.n_input_columns} → {result.n_features}"))
    hist = result.history[-1] if result.history else {}
    if hist:
        rows.append(("epochs", f"{result.epochs} (kept epoch {hist.get('best_epoch')})"))
        if kind == "table":
            final = f"{_fmt(hist['train_loss'][-1], 4)} / {_fmt((hist['val_loss'] or [None])[-1], 4)}"
            rows.append(("final loss (train / held-out)", final))
    rows.append(("threshold", f"{result.threshold} → score > {_fmt(result.threshold_value, 4)}"))
    if result.validation:
        v = result.validation
        reached = f"precision {_fmt(v.get('precision'))}, recall {_fmt(v.get('recall'))}"
        rows.append(("on the labelled validation set", reached))
    rows += [("seconds", result.seconds), ("saved to", str(result.path))]
    return rows


def _image_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    h, sep, w = str(text).lower().partition("x")
    if not sep or not h.strip().isdigit() or not w.strip().isdigit():
        raise InputError(f"--image-size takes HEIGHTxWIDTH, e.g. 128x128; got {text!r}")
    return int(h), int(w)


# ------------------------------------------------------------------------------------------------ score
@app.command()
def score(
    model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder written by `anomalia fit`."),
    data: str = typer.Argument(
        ..., help="File to score (a table is streamed: it may exceed memory), or images for an image model."
    ),
    out: str = typer.Option(..., "--out", "-o", help="Output file: .parquet or .csv."),
    explain: str = typer.Option(
        "flagged", help="Which rows get their top contributing features: flagged | all | none."
    ),
    top_k: int = typer.Option(3, help="Contributing features per row."),
    keep: Annotated[
        list[str] | None, typer.Option("--keep", help="Input column to copy to the output (repeatable).")
    ] = None,
    batch_rows: int = typer.Option(65536, help="Rows per batch."),
    threads: int | None = typer.Option(
        None, help="Torch threads for scoring a table (default: all cores but one, left to reading and writing)."
    ),
    heatmaps: str | None = typer.Option(
        None, help="Images: also write each image with its anomaly heatmap over it (PNG) into this folder."
    ),
    runtime: str = typer.Option(
        "torch", help="torch | onnx: run the model's ONNX export (`anomalia export`) in onnxruntime (no explanations)."
    ),
    respond: str | None = typer.Option(
        None,
        "--respond",
        help="Response file (YAML): raise alerts for the flagged rows (a re-run adds none); its entity column is "
        "read along and copied to the output.",
    ),
    engine: str | None = typer.Option(
        None, "--engine", help="dask: score a dataset (folder or glob) on a cluster; --out is then a Parquet folder."
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help="--engine dask: scheduler address tcp://HOST:8786."),
    workers: int | None = typer.Option(None, "--workers", help="--engine dask: a local cluster of N worker processes."),
    encoding: str | None = ENCODING,
    delimiter: str | None = DELIMITER,
    decimal: str | None = DECIMAL,
) -> None:
    """Score every row of a file (score, p-value, flag, top contributing features), or every image."""
    from ..workflows import score
    from ..workflows.checks import check_score_args
    from . import scale

    if engine is None and scheduler is None and workers is None:  # else --out is a Parquet folder (scale checks it)
        check_score_args(out, keep=keep or (), batch_rows=batch_rows, top_k=top_k, data=data)

    if runtime not in ("torch", "onnx"):
        raise InputError(f"--runtime must be torch or onnx; got {runtime!r}")
    if respond and runtime == "onnx":
        raise InputError("--respond needs --runtime torch (the ONNX runtime path raises no alerts yet); drop one")
    csv_flags = {"encoding": encoding, "delimiter": delimiter, "decimal": decimal}
    if any(csv_flags.values()) and (runtime == "onnx" or engine or scheduler or workers):
        raise InputError("--encoding, --delimiter and --decimal are read by the torch runtime without --engine")
    hook = None
    if respond:
        from .alerts import ScoreResponder

        hook = ScoreResponder(respond, model_dir, data)
    live, update = _row_progress("scoring")
    with live:
        scaled = scale.wants_engine(model_dir, engine, scheduler, workers)
        if scaled and (runtime == "onnx" or respond):
            raise InputError("--engine scores with --runtime torch and without --respond; drop one of them")
        if scaled:
            res = scale.score(
                model_dir,
                data,
                out,
                explain=explain,
                top_k=top_k,
                keep=keep or (),
                batch_rows=batch_rows,
                progress=update,
                engine=engine,
                scheduler=scheduler,
                workers=workers,
            )
        elif runtime == "onnx":
            from .export import score_with_onnx

            res = score_with_onnx(model_dir, data, out, keep, batch_rows, threads, heatmaps, update)
        else:
            res = score(
                model_dir,
                data,
                out,
                explain=explain,
                top_k=top_k,
                keep=list(dict.fromkeys([*(keep or ()), *(hook.extra_columns if hook else ())])),
                batch_rows=batch_rows,
                threads=threads,
                heatmaps=heatmaps,
                progress=update,
                on_batch=hook,
                **csv_flags,
            )
    unit = {"table": "rows", "series": "steps", "images": "images", "text": "texts", "multimodal": "records"}[res.kind]
    rows = [
        (unit, res.n_rows),
        ("flagged", f"{res.n_flagged:,} ({res.n_flagged / max(res.n_rows, 1):.2%}) at {res.threshold}"),
        ("seconds", res.seconds),
        (f"{unit}/s", f"{res.rows_per_second:,.{1 if res.kind == 'images' else 0}f}"),
        ("written to", str(res.out)),
    ]
    if res.heatmaps is not None:
        rows.append(("heatmaps", str(res.heatmaps)))
    if hook is not None:
        rows += hook.rows()
    console.print(_kv_table("Scored", rows))


# ------------------------------------------------------------------------------------------------ evaluate
def _metrics_table(ev: Any) -> Table:
    m = ev.metrics
    table = Table(title=f"{ev.detector} on {ev.data} · threshold {ev.threshold}", title_justify="left")
    keys = [("n", "rows"), ("n_anomalies", "anomalies"), ("precision", "precision"), ("recall", "recall")]
    keys += [("f1", "F1"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("false_alarm_rate", "false-alarm rate")]
    for _, label in keys:
        table.add_column(label, justify="right")
    table.add_row(*(_fmt(m.get(k)) if k not in ("n", "n_anomalies") else _fmt(int(m.get(k, 0))) for k, _ in keys))
    return table


def _operating_table(ev: Any) -> Table:
    table = Table(title="Operating points (trade precision for recall)", title_justify="left")
    for col in ("threshold rule", "threshold", "flagged", "precision", "recall", "F1", "note"):
        table.add_column(col, justify="left" if col in ("threshold rule", "note") else "right")
    for op in ev.operating_points:
        table.add_row(
            op.name, _fmt(op.threshold, 4), _fmt(op.flagged), _fmt(op.precision), _fmt(op.recall), _fmt(op.f1), op.note
        )
    return table


def _print_evaluation(ev: Any) -> None:
    """The metrics table, the pixel or series metrics where the evaluation has them, the operating points."""
    console.print(_metrics_table(ev))
    m = ev.metrics
    pixel = [(k.replace("_", " "), m[k]) for k in ("pixel_roc_auc", "per_region_overlap") if k in m]
    if pixel:
        console.print(_kv_table("Pixel level (anomaly maps against the masks)", pixel))
    if "point_f1" in m:
        events = f"{_fmt(m['event_f1'])} ({int(m['event_found'])}/{int(m['event_events'])} events)"
        console.print(
            _kv_table(
                "Time-series F1",
                [
                    ("point-wise", m["point_f1"]),
                    ("event-wise", events),
                    ("range-based", m["range_f1"]),
                    ("point-adjusted (optimistic)", m["pa_f1"]),
                ],
            )
        )
    console.print(_operating_table(ev))


@app.command()
def evaluate(
    model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder written by `anomalia fit`."),
    data: str = typer.Argument(..., help="Labelled CSV or Parquet file, or an image folder (MVTec layout: test/)."),
    label_column: str | None = typer.Option(None, help="Column with 1 = anomaly, 0 = normal (files: required)."),
    report: str | None = typer.Option(None, "--report", help="Also write the HTML report to this file."),
    target_precision: float = typer.Option(0.9, help="Precision target marked in the report."),
    target_recall: float = typer.Option(0.9, help="Recall target marked in the report."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics and operating points as JSON."),
    encoding: str | None = ENCODING,
    delimiter: str | None = DELIMITER,
    decimal: str | None = DECIMAL,
) -> None:
    """Measure a model on labelled data: metrics, operating points and (with --report) the HTML report."""
    from ..workflows import evaluate

    live, update = _row_progress("evaluating")
    with live:
        ev = evaluate(
            model_dir,
            data,
            label_column=label_column,
            target_precision=target_precision,
            target_recall=target_recall,
            require_labels=True,
            progress=update,
            encoding=encoding,
            delimiter=delimiter,
            decimal=decimal,
        )
    if as_json:
        from ..workflows.checks import evaluation_json

        console.print_json(evaluation_json(ev))
    else:
        _print_evaluation(ev)
    if report:
        _write_report(ev, report)


def _write_report(ev: Any, path: str) -> None:
    from ..report import write_report

    with console.status("writing the report"):
        out = write_report(ev, path)
    console.print(f"Report: [bold]{out}[/] (open it in a browser; it needs no network)", soft_wrap=True)


@app.command()
def report(
    model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder written by `anomalia fit`."),
    data: str = typer.Argument(..., help="File (or image folder) to report on."),
    out: str = typer.Option("report.html", "--out", "-o", help="HTML file to write."),
    label_column: str | None = typer.Option(None, help="Column with 1 = anomaly, 0 = normal (enables the curves)."),
    target_precision: float = typer.Option(0.9, help="Precision target marked in the report."),
    target_recall: float = typer.Option(0.9, help="Recall target marked in the report."),
    encoding: str | None = ENCODING,
    delimiter: str | None = DELIMITER,
    decimal: str | None = DECIMAL,
) -> None:
    """Write a self-contained HTML report: score distributions, curves, thresholds, top anomalies."""
    from ..workflows import evaluate

    live, update = _row_progress("scoring")
    with live:
        ev = evaluate(
            model_dir,
            data,
            label_column=label_column,
            target_precision=target_precision,
            target_recall=target_recall,
            progress=update,
            encoding=encoding,
            delimiter=delimiter,
            decimal=decimal,
        )
    if ev.has_labels:
        console.print(_metrics_table(ev))
    _write_report(ev, out)


# ------------------------------------------------------------------------------------------------ models, info
models_app = typer.Typer(help="List the registered detectors; `models rollback MODEL` serves an earlier version.")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List the registered detectors and their parameters (defaults in brackets)."""
    if ctx.invoked_subcommand is not None:
        return
    from .catalog import DETECTORS  # a static copy of the registry: no torch import to list them

    table = Table(title="Detectors (use with `anomalia fit --model NAME --set key=value`)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("reads")
    table.add_column("class")
    table.add_column(escape("parameters [default]"))
    for name, (cls_name, kind, doc, text) in DETECTORS.items():
        table.add_row(name, kind, f"{cls_name}\n[dim]{escape(doc)}[/]", text)
    console.print(table)


@app.command()
def info(model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder.")) -> None:
    """Show a saved model's manifest: detector, schema, threshold, training data, versions."""
    from ..bundle import describe  # the manifest only: no torch import

    i = describe(model_dir)
    schema = i["schema"]
    kind = i["input_kind"]
    cols = schema.get("columns") or []
    thr = i["threshold"] or {}
    train = i["training"]
    rows: list[tuple[str, Any]] = [
        ("folder", i["path"]),
        ("name · version", f"{i['name']} · {i['version']}"),
        ("detector", f"{i['detector']} ({kind})"),
        ("parameters", ", ".join(f"{k}={v}" for k, v in sorted(i["params"].items()) if v is not None)),
        ("network layers", i["layers"] or "—"),
        ("label column", i["label_column"] or "— (none given at fit)"),
        ("values used", ", ".join(f"{k}={v}" for k, v in i["effective"].items()) or "—"),
        ("features", f"{schema.get('n_features')}: {', '.join(map(str, cols[:12]))}{' ...' if len(cols) > 12 else ''}"),
        ("threshold", f"{thr.get('spec', '—')} → score > {_fmt(thr.get('threshold'), 4)}"),
        ("training rows", train.get("n_train_rows")),
        ("calibration rows", i["n_calibration"]),
        ("updates (partial_fit)", train.get("n_updates")),
        ("epochs run", i["epochs_run"]),
    ]
    pre = i["preprocess"]
    if pre:
        rows += [
            ("input columns → features", f"{pre['input_columns']} → {pre['features']}"),
            ("one-hot columns", ", ".join(pre["one_hot_columns"]) or "none"),
            ("missing values", pre["impute"]),
        ]
    if i["images"]:
        rows.append(("images read as", f"{i['images']['mode']}, {i['images']['size'][0]}x{i['images']['size'][1]}"))
    rows += [
        ("created", i["created"]),
        ("anomalia version", i["anomalia_version"]),
        ("format version", i["format_version"]),
    ]
    console.print(_kv_table(f"Model {i['path']}", rows))


# ------------------------------------------------------------------------------------------------ demo
@app.command()
def demo(
    alpha: float = typer.Option(0.05, help="False-alarm rate to flag at."),
    seed: int = typer.Option(0, help="Random seed."),
    report: str = typer.Option("demo-report.html", "--report", help="HTML report to write ('' for none)."),
) -> None:
    """Train on benign breast-cancer records (ships with scikit-learn) and evaluate on held-out ones."""
    from ..workflows import run_demo
    from ..workflows.evaluate import demo_evaluation

    with console.status("training") as status:
        result = run_demo(alpha=alpha, random_state=seed, on_detector=lambda n: status.update(f"training {n}"))
    console.print(
        f"Breast cancer (Wisconsin): trained on {result.n_train} benign records; held out "
        f"{result.n_test_normal} benign and {result.n_test_anomalies} malignant. Flag at p <= {alpha:g}."
    )
    table = Table(
        title=f"Held-out records, threshold false-alarm:{alpha:g}",
        caption="FAR = observed false-alarm rate on held-out benign records; s = fit + score seconds",
    )
    for col in ("detector", "precision", "recall", "F1", "ROC-AUC", "PR-AUC", "FAR", "s"):
        table.add_column(col, justify="left" if col == "detector" else "right", no_wrap=True)
    for name, r in result.rows.items():
        table.add_row(
            name,
            *(f"{r[k]:.3f}" for k in ("precision", "recall", "f1", "roc_auc", "pr_auc", "false_alarm_rate")),
            f"{r['seconds']:.1f}",
        )
    if not console.is_terminal:
        console.width = max(console.width, 100)  # a pipe or CI log gets the whole table
    console.print(table)
    if report:
        _write_report(demo_evaluation(result), report)


_export_commands.register(app)  # export, diagnose
app.add_typer(alerts_app, name="alerts")
app.command("serve")(_serve)

from .watch import register as _register_watch  # noqa: E402  (watch, adapt, models rollback)

_register_watch(app, models_app)


# ------------------------------------------------------------------------------------------------ entry point
def main(args: list[str] | None = None) -> None:
    """Entry point. Our own errors (bad input, bad model folder) and file-system errors become one line on
    stderr and exit code 2; usage errors are reported by Typer with exit code 2 as well."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    try:
        app(args=args, prog_name="anomalia")
    except AnomaliaError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        err_console.print(
            f"[bold red]error:[/]{escape(name)} {escape(str(exc.strerror or exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted", soft_wrap=True)
        sys.exit(130)
