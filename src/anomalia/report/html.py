"""Render an evaluation as one self-contained HTML file (inline CSS, figures as data URIs, no scripts)."""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from .._core import InputError
from ..results import Evaluation
from .sections import SECTION_BUILDERS, Section, fmt


@dataclass
class Report:
    """What the template renders: a title, headline numbers and the sections in order."""

    title: str
    subtitle: str
    headline: list[tuple[str, str]]
    facts: list[tuple[str, str]]
    sections: list[Section] = field(default_factory=list)

    @property
    def plot_keys(self) -> list[str]:
        return [p.key for s in self.sections for p in s.plots]


def _version() -> str:
    try:
        return version("anomalia")
    except PackageNotFoundError:
        return "0+unknown"


def build_report(ev: Evaluation) -> Report:
    """Run every registered section builder on ``ev``."""
    m = ev.metrics
    headline = [("rows", fmt(int(m.get("n", ev.scores.size)))), ("flagged", fmt(int(ev.flags.sum())))]
    if ev.has_labels:
        headline += [
            ("anomalies (labelled)", fmt(int(m["n_anomalies"]))),
            ("precision", fmt(m.get("precision"))),
            ("recall", fmt(m.get("recall"))),
            ("F1", fmt(m.get("f1"))),
            ("ROC-AUC", fmt(m.get("roc_auc"))),
            ("PR-AUC", fmt(m.get("pr_auc"))),
            ("false-alarm rate", fmt(m.get("false_alarm_rate"))),
        ]
    params = ", ".join(f"{k}={v}" for k, v in sorted(ev.params.items()) if v is not None and k != "threshold")
    facts = [
        ("data", ev.data),
        ("detector", f"{ev.detector} ({params})"),
        ("threshold", f"{ev.threshold} → flag score > {fmt(ev.threshold_value, 4)}"),
        ("calibration", f"{ev.calibration_scores.size:,} held-out normal rows (conformal p-values)"),
    ]
    sections = [s for s in (b(ev) for b in SECTION_BUILDERS) if s is not None]
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Report(ev.title, f"anomalia {_version()} · {created}", headline, facts, sections)


_CODE = re.compile(r"`([^`\n]+)`")


def inline_code(text: str) -> Markup:
    """``text`` escaped for HTML, with Markdown's `code` spans (flags, commands) as ``<code>`` elements."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(text))))


def render(report: Report) -> str:
    """The report as an HTML string."""
    env = Environment(loader=PackageLoader("anomalia.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["code"] = inline_code
    return env.get_template("report.html").render(report=report)


def write_report(ev: Evaluation, path: str | Path) -> Path:
    """Build, render and write the report of ``ev`` to ``path``; returns the path."""
    out = Path(path)
    if out.parent and not out.parent.exists():
        raise InputError(f"cannot write the report to {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise InputError(f"cannot write the report to {out}: it is a folder; give a file name like report.html")
    html = render(build_report(ev))
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out
