"""anomalia.report: sections, promised plots, self-contained HTML, extension by sections."""

from __future__ import annotations

import re

import numpy as np
import pytest

from anomalia.report import SECTION_BUILDERS, Section, build_report, register_section, render, write_report
from anomalia.workflows import demo_evaluation, evaluate_file, fit_file, run_demo

from tabular_files import FAST, mixed_frame, write

#: Every plot a labelled report of a deep detector promises.
PROMISED = ["score-distribution", "roc", "pr", "threshold-sweep", "confusion", "training-loss"]


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = write(mixed_frame(300), tmp / "d.csv")
    fit_file(data, out=tmp / "m", params=FAST, label_column="label")
    return evaluate_file(tmp / "m", data, label_column="label")


def test_labelled_report_has_every_promised_plot(evaluation):
    report = build_report(evaluation)
    assert report.plot_keys == PROMISED
    keys = [s.key for s in report.sections]
    assert keys[:6] == ["scores", "curves", "threshold", "confusion", "training", "top"]
    top = next(s for s in report.sections if s.key == "top").tables[0]
    assert len(top.rows) == 20 and top.columns[:4] == ["row", "score", "p-value", "flagged"]
    points = next(s for s in report.sections if s.key == "threshold").tables[0]
    assert [r[0] for r in points.rows][1:] == ["precision ≥ 0.9", "recall ≥ 0.9", "best F1"]


def test_html_is_self_contained(evaluation, tmp_path):
    path = write_report(evaluation, tmp_path / "r.html")
    html = path.read_text()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(PROMISED)
    for key in PROMISED:
        assert f'data-plot="{key}"' in html
    assert 'data-table="top-anomalies"' in html


def test_report_without_labels_explains_what_is_missing(evaluation):
    ev = evaluation
    plain = type(ev)(**{**ev.__dict__, "labels": None, "operating_points": ev.operating_points[:1]})
    report = build_report(plain)
    assert report.plot_keys == ["score-distribution", "training-loss"]
    notes = " ".join(n for s in report.sections for n in s.notes)
    assert "need labels" in notes or "needs labels" in notes


def test_demo_report_compares_detectors_and_notes_untrained_ones():
    result = run_demo(detectors=("pca", "isolation-forest"))
    ev = demo_evaluation(result, "pca")
    assert set(ev.comparison) == {"isolation-forest"}
    report = build_report(ev)
    assert "training-loss" not in report.plot_keys
    training = next(s for s in report.sections if s.key == "training")
    assert "not trained by gradient descent" in training.notes[0]
    comparison = next(s for s in report.sections if s.key == "comparison").tables[0]
    assert [r[0] for r in comparison.rows] == ["pca", "isolation-forest"]
    assert np.isfinite(ev.scores).all()


def test_a_later_issue_can_add_a_section(evaluation):
    def extra_view(ev):
        return Section("extra-view", "Extra view", "drawn from ev.extras") if "extra-view" in ev.extras else None

    register_section(extra_view, before="top_rows_section")
    try:
        assert "extra-view" not in [s.key for s in build_report(evaluation).sections]
        evaluation.extras["extra-view"] = True
        keys = [s.key for s in build_report(evaluation).sections]
        assert keys.index("extra-view") == keys.index("top") - 1
        assert 'id="extra-view"' in render(build_report(evaluation))
    finally:
        SECTION_BUILDERS.remove(extra_view)
        evaluation.extras.pop("extra-view", None)
