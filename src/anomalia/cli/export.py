"""``anomalia export`` (a model's scoring graph as ONNX) and ``anomalia diagnose`` (is my normal data enough?).

Registered on the main app by :func:`register`; heavy imports (torch, onnx, pandas) happen inside the
commands so that ``anomalia --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .._core import InputError

console = Console()


def _kv_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    return table


def export(
    model_dir: str = typer.Argument(..., metavar="MODEL", help="Model folder written by `anomalia fit`."),
    format_: str = typer.Option("onnx", "--format", help="Export format: onnx."),
    out: str | None = typer.Option(None, "--out", "-o", help="File to write [MODEL/model.onnx]."),
    exporter: str = typer.Option("auto", help="auto (dynamo, TorchScript as fallback) | dynamo | torchscript."),
    opset: int | None = typer.Option(None, help="ONNX opset [the exporter's default]."),
) -> None:
    """Export a model's scoring graph (standardise -> network -> score) to ONNX, with a manifest beside it
    (calibration scores, threshold, input schema, preprocessing) so p-values and decisions match too."""
    if format_ != "onnx":
        raise InputError(f"--format {format_!r} is not supported; the one export format is onnx")
    from ..export import export_onnx

    with console.status("exporting to ONNX and checking its scores"):
        try:
            res = export_onnx(model_dir, out, exporter=exporter, opset=opset)
        except ImportError as exc:  # the onnx extra is not installed: one line, exit code 2
            raise InputError(str(exc)) from None
    rows: list[tuple[str, Any]] = [
        ("written to", str(res.path)),
        ("manifest", str(res.manifest)),
        ("exporter · opset", f"{res.exporter} · {res.opset}"),
        ("input", f"float32 {res.input_shape}"),
        ("largest score difference", f"{res.max_relative_difference:.2g} relative, over {res.rows_checked:,} rows"),
        ("size", f"{res.bytes / 1024:,.1f} KiB"),
    ]
    console.print(_kv_table("Exported", rows))


def diagnose(
    data: str = typer.Argument(..., help="CSV or Parquet file of normal records."),
    alpha: float = typer.Option(0.01, help="False-alarm rate you want to flag at."),
    model: str = typer.Option("autoencoder", "--model", "-m", help="Detector for the learning curve."),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Detector argument key=value (repeatable).")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Column to ignore (repeatable).")] = None,
    label_column: str | None = typer.Option(None, help="Column with 1 = anomaly: those rows are left out."),
    seed: int = typer.Option(0, help="Random seed."),
    report: str | None = typer.Option(None, "--report", help="Also write the diagnosis as an HTML report."),
) -> None:
    """Is my normal data enough? Learning curve, calibration size for --alpha, feature warnings, advice."""
    from ..workflows import parse_params
    from ..workflows.diagnose import diagnose_file

    params = parse_params(model, set_ or [])
    with console.status("diagnosing (fitting on growing shares of the data)"):
        diag = diagnose_file(
            data, alpha=alpha, model=model, params=params, drop=drop or (), label_column=label_column, random_state=seed
        )
    _print_diagnosis(diag)
    if report:
        from ..report import write_report

        out = write_report(diag.evaluation(), report)
        console.print(f"Report: [bold]{out}[/]", soft_wrap=True)


def _print_diagnosis(diag: Any) -> None:
    curve = Table(title="Learning curve (held-out normal rows against synthetic anomalies)", title_justify="left")
    for col in ("training rows", "ROC-AUC", "score stability"):
        curve.add_column(col, justify="right")
    for p in diag.curve:
        stab = "—" if p.stability is None else f"{p.stability:.3f}"
        curve.add_row(f"{p.n_train:,}", f"{p.roc_auc:.3f}", stab)
    console.print(curve)
    c = diag.calibration
    console.print(
        _kv_table(
            "Calibration",
            [
                ("rows", diag.n_rows),
                ("calibration scores", c.n_calibration),
                (f"needed for alpha = {c.alpha:g}", c.needed),
                ("more rows needed", c.more_rows),
                ("smallest alpha reachable", f"{c.smallest_alpha:.3g}"),
            ],
        )
    )
    if diag.warnings:
        warn = Table(title="Feature warnings", title_justify="left")
        warn.add_column("column")
        warn.add_column("kind")
        warn.add_column("why")
        for w in diag.warnings:
            warn.add_row(w.column, w.kind, w.message)
        console.print(warn)
    console.print(f"[bold]Recommendation:[/] {diag.recommendation}", soft_wrap=True)


def score_with_onnx(
    model_dir: str,
    data: str,
    out: str,
    keep: list[str] | None,
    batch_rows: int,
    threads: int | None,
    heatmaps: str | None,
    progress: Any,
) -> Any:
    """``anomalia score --runtime onnx``: the export's graph in onnxruntime (:mod:`anomalia.workflows.onnx_score`)."""
    if heatmaps is not None:
        raise InputError("--heatmaps needs the torch runtime: the ONNX graph gives scores, not anomaly maps")
    try:
        from ..workflows.onnx_score import score_onnx

        return score_onnx(
            model_dir, data, out, keep=keep or (), batch_rows=batch_rows, threads=threads, progress=progress
        )
    except ImportError as exc:  # the onnx extra is not installed: one line, exit code 2
        raise InputError(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``diagnose`` to the ``anomalia`` command."""
    app.command("export")(export)
    app.command("diagnose")(diagnose)
