"""The report section of a diagnosis ("is my normal data enough?"): the learning curve, the calibration
size against the false-alarm rate asked for, feature warnings and the recommendation. Reads
``ev.extras["diagnosis"]`` (what :meth:`anomalia.workflows.diagnose.Diagnosis.to_dict` gives)."""

from __future__ import annotations

from typing import Any

from ..results import Evaluation
from . import figures
from .sections import Plot, Section, Table, fmt, register_section


@figures.styled
def learning_curve(curve: list[dict[str, Any]]) -> Any:
    fig, ax = figures.new_figure()
    n = [p["n_train"] for p in curve]
    ax.plot(n, [p["roc_auc"] for p in curve], marker="o", label="ROC-AUC (synthetic anomalies)")
    stab = [(p["n_train"], p["stability"]) for p in curve if p["stability"] is not None]
    if stab:
        ax.plot(*zip(*stab, strict=True), marker="s", linestyle="--", label="score stability (rank correlation)")
    ax.set_xscale("log")
    ax.set_xlabel("training rows")
    ax.set_ylim(min(0.5, *(p["roc_auc"] for p in curve)) - 0.02, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def diagnosis_section(ev: Evaluation) -> Section | None:
    d = ev.extras.get("diagnosis")
    if not d:
        return None
    sec = Section(
        "diagnosis",
        "Is the normal data enough?",
        "The detector fitted on growing shares of the normal rows, scored on held-out normal rows against "
        "synthetic anomalies made from them (a yardstick for comparing sizes, not a promise about real "
        "anomalies); score stability is the rank correlation with the previous, smaller fit.",
    )
    sec.notes.append(d["recommendation"])
    curve = d["curve"]
    sec.plots.append(Plot("learning-curve", "Learning curve", figures.to_data_uri(learning_curve(curve))))
    sec.tables.append(
        Table(
            ["training rows", "ROC-AUC", "score stability"],
            [[fmt(p["n_train"]), fmt(p["roc_auc"]), fmt(p["stability"])] for p in curve],
            key="learning-curve",
        )
    )
    c = d["calibration"]
    sec.tables.append(
        Table(
            ["false-alarm rate asked", "calibration scores", "needed", "more rows needed", "smallest reachable"],
            [[fmt(c[k]) for k in ("alpha", "n_calibration", "needed", "more_rows", "smallest_alpha")]],
            key="calibration-size",
            caption="A conformal p-value is at least 1 / (calibration scores + 1), so a false-alarm rate alpha needs "
            "ceil(1 / alpha) - 1 of them.",
        )
    )
    if d["warnings"]:
        sec.tables.append(
            Table(
                ["column", "warning", "why"],
                [[w["column"], w["kind"], w["message"]] for w in d["warnings"]],
                key="feature-warnings",
            )
        )
    return sec


register_section(diagnosis_section, before="scores_section")
