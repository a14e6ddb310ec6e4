"""A report is a list of sections; each builder turns an evaluation into one section (or None to skip it).

To add a view (time series, images), write ``def my_section(ev: Evaluation) -> Section | None`` that reads
its typed view of the evaluation (``ev.series``, ``ev.images``) and call :func:`register_section`;
:func:`anomalia.report.build_report` runs every registered builder in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from markupsafe import Markup

from ..results import Evaluation
from . import figures


@dataclass
class Plot:
    """One figure; ``key`` is stable (tests and links use it), ``image`` is a data URI."""

    key: str
    title: str
    image: str
    caption: str = ""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    key: str = ""
    caption: str = ""


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    plots: list[Plot] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SectionBuilder = Callable[[Evaluation], "Section | None"]
SECTION_BUILDERS: list[SectionBuilder] = []


def register_section(builder: SectionBuilder, *, before: str | None = None) -> SectionBuilder:
    """Add a section builder (at the end, or before the builder whose function name is ``before``)."""
    if builder in SECTION_BUILDERS:
        return builder
    names = [b.__name__ for b in SECTION_BUILDERS]
    SECTION_BUILDERS.insert(names.index(before) if before in names else len(SECTION_BUILDERS), builder)
    return builder


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers for tables: fixed digits, thousands separators for counts, em dash for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return (
            f"{value:.{digits}g}" if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3) else f"{value:.{digits}f}"
        )
    return str(value)


# ---------------------------------------------------------------------------------------------- builders
@register_section
def scores_section(ev: Evaluation) -> Section:
    labelled = ev.has_labels
    intro = (
        "How the scores of normal and anomalous rows are spread, and where the threshold cuts. The further "
        "apart the two humps, the easier the two are to tell apart."
        if labelled
        else "Scores of all rows, beside the held-out normal rows the model was calibrated on, and where the "
        "threshold cuts (no labels were given, so normal and anomalous rows cannot be told apart here)."
    )
    fig = figures.score_distribution(
        ev.scores, ev.labels if labelled else None, ev.threshold_value, ev.calibration_scores
    )
    title = "Scores of normal vs anomalous rows" if labelled else "Scores of all rows and of the held-out normal rows"
    plot = Plot("score-distribution", title, figures.to_data_uri(fig))
    return Section("scores", "Score distribution", intro, plots=[plot])


@register_section
def curves_section(ev: Evaluation) -> Section:
    sec = Section(
        "curves",
        "ROC and precision-recall curves",
        "Every threshold at once: the dot is the model's current threshold. Grey lines are the other "
        "detectors evaluated on the same rows."
        if ev.comparison
        else "Every threshold at once: the dot is the model's current threshold.",
    )
    if not ev.has_labels:
        sec.notes.append("These curves need labels with both normal rows and anomalies (pass --label-column).")
        return sec
    assert ev.labels is not None
    sec.plots = [
        Plot("roc", "ROC curve", figures.to_data_uri(figures.roc(ev.scores, ev.labels, ev.flags, ev.comparison))),
        Plot(
            "pr",
            "Precision-recall curve",
            figures.to_data_uri(figures.precision_recall(ev.scores, ev.labels, ev.flags, ev.comparison)),
        ),
    ]
    return sec


@register_section
def threshold_section(ev: Evaluation) -> Section:
    sec = Section(
        "threshold",
        "Choosing the threshold: precision against recall",
        "Raising the threshold flags fewer rows: precision goes up, recall goes down. The vertical lines mark "
        f"the current threshold and the ones that reach precision {ev.target_precision:g} or recall "
        f"{ev.target_recall:g} on this data; refit with `--threshold precision:{ev.target_precision:g}` (or "
        f"`recall:{ev.target_recall:g}`, `best-f1`) and a label column to use one.",
    )
    styles = {"current": "-", "precision": "--", "recall": ":", "best": "-."}
    marks = [(op.name, op.threshold, styles[op.name.split()[0]]) for op in ev.operating_points]
    if ev.has_labels:
        assert ev.labels is not None
        fig = figures.threshold_tradeoff(ev.scores, ev.labels, marks)
        sec.plots.append(
            Plot("threshold-sweep", "Precision, recall and F1 against the threshold", figures.to_data_uri(fig))
        )
    else:
        sec.notes.append("The trade-off needs labels (pass --label-column); the table shows what each threshold flags.")
    sec.tables.append(
        Table(
            ["operating point", "threshold", "flagged", "precision", "recall", "F1", "note"],
            [
                [op.name, fmt(op.threshold, 4), fmt(op.flagged), fmt(op.precision), fmt(op.recall), fmt(op.f1), op.note]
                for op in ev.operating_points
            ],
            key="operating-points",
        )
    )
    return sec


@register_section
def confusion_section(ev: Evaluation) -> Section:
    sec = Section("confusion", "Confusion matrix", f"Decisions at the current threshold ({ev.threshold}).")
    if not ev.has_labels:
        sec.notes.append(f"No labels: {int(ev.flags.sum()):,} of {ev.flags.size:,} rows are flagged.")
        return sec
    counts = {k: ev.metrics[k] for k in ("tp", "fp", "tn", "fn")}
    sec.plots.append(Plot("confusion", "Confusion matrix", figures.to_data_uri(figures.confusion_matrix(counts))))
    return sec


@register_section
def training_section(ev: Evaluation) -> Section:
    sec = Section(
        "training",
        "Training",
        "Loss per epoch on the training rows and on held-out normal rows (early stopping keeps the weights of "
        "the best held-out epoch).",
    )
    if not ev.history or not any(h.get("train_loss") for h in ev.history):
        sec.intro = ""
        sec.notes.append(f"The {ev.detector} detector is not trained by gradient descent, so it has no loss curve.")
        return sec
    sec.plots.append(
        Plot("training-loss", "Training-loss curve", figures.to_data_uri(figures.training_loss(ev.history)))
    )
    return sec


def _value_cell(c: Any) -> str:
    """``value (expected E; normal L to H)`` of one contribution, with what is known."""
    text = c.value if isinstance(c.value, str) else fmt(c.value)
    extra = []
    if c.expected is not None:
        extra.append(f"expected {c.expected if isinstance(c.expected, str) else fmt(c.expected)}")
    if c.normal_low is not None and c.normal_high is not None:
        extra.append(f"normal {fmt(c.normal_low)} to {fmt(c.normal_high)}")
    return f"{text} ({'; '.join(extra)})" if extra else text


def _image_rows(ev: Evaluation) -> Section:
    """The top anomalies of an image evaluation: path, kind, score, p-value, decision, link to its heat map."""
    assert ev.images is not None
    cols = ["image", "kind", "score", "p-value", "flagged", "label", "heat map"]
    rows: list[list[Any]] = []
    for i, v in enumerate(ev.images.top):
        label = "—" if v.label is None else ("anomaly" if v.label else "normal")
        link = Markup('<a href="#image-{0}">image {0}</a>').format(i)
        rows.append([v.path, v.kind, fmt(v.score, 4), fmt(v.p_value, 4), fmt(v.flagged), label, link])
    return Section(
        "top",
        "Top anomalies",
        "The highest-scored test images, with their conformal p-value and a link to each one's anomaly map "
        "(below, under “Most anomalous images and where”).",
        tables=[Table(cols, rows, key="top-anomalies")],
    )


@register_section
def top_rows_section(ev: Evaluation) -> Section:
    if ev.images is not None and not ev.top_rows:
        return _image_rows(ev)
    k = max((len(r.contributions) for r in ev.top_rows), default=0)
    timed = any(r.time is not None for r in ev.top_rows)
    cols = ["time" if timed else "row", "score", "p-value", "flagged"] + (["label"] if ev.labels is not None else [])
    for i in range(k):
        cols += [f"feature {i + 1}", "share", "value"]
    rows = []
    for r in ev.top_rows:
        where = str(r.time) if timed else fmt(r.row)
        cells = [where, fmt(r.score, 4), fmt(r.p_value, 4), fmt(r.flagged)]
        if ev.labels is not None:
            cells.append("anomaly" if r.label == 1 else "normal")
        for c in r.contributions:
            cells += [c.feature, f"{c.share:.0%}", _value_cell(c)]
        rows.append(cells)
    where = "named by their timestamps" if timed else "row numbers count from 0 in the file"
    return Section(
        "top",
        "Top anomalies and why",
        f"The highest-scored rows ({where}) with the input columns that are most "
        "unusual in each score, measured against each column's usual error on normal rows: the value the row "
        "has, the value the model expected (its reconstruction or forecast) and the column's normal range "
        "(0.5 % to 99.5 % of held-out normal rows).",
        tables=[Table(cols, rows, key="top-anomalies")],
    )


@register_section
def comparison_section(ev: Evaluation) -> Section | None:
    if not ev.comparison_metrics:
        return None
    keys = [
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "F1"),
        ("roc_auc", "ROC-AUC"),
        ("pr_auc", "PR-AUC"),
    ]
    keys.append(("false_alarm_rate", "false-alarm rate"))
    rows = [[name, *(fmt(m.get(k)) for k, _ in keys)] for name, m in ev.comparison_metrics.items()]
    return Section(
        "comparison",
        "All detectors on the same rows",
        "",
        tables=[Table(["detector", *(label for _, label in keys)], rows, key="comparison")],
    )
