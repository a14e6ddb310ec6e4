"""``anomalia`` command: thin over ``anomalia.workflows``."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from .._core import AnomaliaError

app = typer.Typer(help="anomalia: deep-learning anomaly detection.", no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """anomalia: learn normal behaviour from normal data and flag what departs from it."""


@app.command()
def demo(
    alpha: float = typer.Option(0.05, help="False-alarm rate to flag at."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train on benign breast-cancer records (ships with scikit-learn) and evaluate on held-out ones."""
    from ..workflows import run_demo

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
        table.add_column(col, justify="left" if col == "detector" else "right")
    for name, r in result.rows.items():
        table.add_row(
            name,
            *(f"{r[k]:.3f}" for k in ("precision", "recall", "f1", "roc_auc", "pr_auc", "false_alarm_rate")),
            f"{r['seconds']:.1f}",
        )
    console.print(table)


def main() -> None:
    """Entry point. Our own errors (bad input, bad model folder) become one line on stderr and exit code 2;
    usage errors are reported by Typer with exit code 2 as well."""
    try:
        app()
    except AnomaliaError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
