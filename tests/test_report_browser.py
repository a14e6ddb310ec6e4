"""The report in a real browser: Debian's headless Chromium (installed by `make test`), driven by Playwright.

Skipped with a reason where Chromium or the playwright package is absent (a user's machine without the
test setup); CI installs both.
"""

from __future__ import annotations

import pytest

from anomalia.report import write_report
from anomalia.workflows import evaluate_file, fit_file

from tabular_files import FAST, mixed_frame, write

PROMISED = ["score-distribution", "roc", "pr", "threshold-sweep", "confusion", "training-loss"]

pytestmark = pytest.mark.browser


def test_report_opens_without_console_errors_and_shows_every_plot(browser, tmp_path):
    data = write(mixed_frame(300), tmp_path / "d.csv")
    fit_file(data, out=tmp_path / "m", params=FAST, label_column="label")
    path = write_report(evaluate_file(tmp_path / "m", data, label_column="label"), tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    assert problems == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # nothing from the network
    for key in PROMISED:
        img = page.locator(f'figure[data-plot="{key}"] img')
        assert img.count() == 1, key
        size = img.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]")
        assert size[0] and size[1] > 200 and size[2] > 150 and size[3] > 100, (key, size)
    assert page.locator('table[data-table="top-anomalies"] tbody tr').count() == 20
    assert page.title().endswith("anomalia report")
    page.close()


def test_wide_tables_scroll_inside_the_page_instead_of_being_cut_off(browser, tmp_path):
    data = write(mixed_frame(300), tmp_path / "d.csv")
    fit_file(data, out=tmp_path / "m", params=FAST, label_column="label")
    path = write_report(evaluate_file(tmp_path / "m", data, label_column="label"), tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 640, "height": 900})
    page.goto(path.resolve().as_uri())
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")  # the page fits
    table = page.locator('table[data-table="top-anomalies"]')
    wrap = table.evaluate(
        "t => { const w = t.parentElement; w.scrollLeft = w.scrollWidth;"
        " const last = t.querySelector('tbody tr td:last-child').getBoundingClientRect();"
        " return [getComputedStyle(w).overflowX, w.scrollWidth > w.clientWidth,"
        " last.right <= w.getBoundingClientRect().right + 1] }"
    )
    assert wrap == ["auto", True, True], wrap  # wider than the page, scrolled to its last column
    page.close()
