"""The live dashboard in real headless Chromium (Debian's, driven by Playwright) against a real Uvicorn server
with the response engine: points ingested → the alert shows up within 2 s → acknowledge it in the page →
the store holds it acknowledged."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("sqlalchemy", reason="the respond extra (sqlalchemy) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from anomalia.respond import Responder  # noqa: E402
from anomalia.serve import ServiceSettings, create_app  # noqa: E402

from service_client import LiveServer, points, series_frame, shared_models  # noqa: E402

TOKEN = "dashboard-token-0123456789"

pytestmark = pytest.mark.browser


def test_dashboard_shows_an_alert_live_and_acknowledges_it(browser, tmp_path, tmp_path_factory):
    import pandas as pd

    series = shared_models(tmp_path_factory)["series"]
    responder = Responder({"store": f"sqlite:///{tmp_path / 'alerts.db'}", "incidents": {"group_wait": 0}})
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    app = create_app([series], responder, token_file=tokens, settings=ServiceSettings(state_dir=tmp_path / "s"))
    server = LiveServer(app)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(f"{server.url}/?token={TOKEN}")  # sets the HttpOnly cookie, then the dashboard
        page.wait_for_selector("#live.on", timeout=10_000)  # the event stream is connected
        assert page.locator("#manifest dd").first.inner_text() == "series"
        assert page.locator("#alerts tbody tr").count() == 0

        frame = series_frame(60, seed=5)
        start = pd.Timestamp.now("UTC").tz_localize(None).floor("min") - pd.Timedelta("59min")  # up to now
        frame["time"] = frame["time"] - frame["time"].iloc[0] + start
        frame.loc[40:43, "cpu"] += 6.0
        auth = {"authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.url, timeout=30, headers=auth) as c:
            sent = time.perf_counter()
            r = c.post("/v1/models/series/ingest/web-7", json={"points": points(frame)})
            assert r.status_code == 200 and r.json()["alerts"], r.text
            row = page.locator("#alerts tbody tr").first
            row.wait_for(timeout=2_000)
            appeared = time.perf_counter() - sent
            alert_id = row.get_attribute("data-alert-id")
            assert alert_id in r.json()["alerts"] and appeared < 2.0
            assert row.locator(".status").inner_text() == "firing"
            assert "web-7" in row.inner_text()
            page.wait_for_selector('.stream[data-key="web-7"][data-points="60"]', timeout=2_000)
            assert int(page.locator('.stream[data-key="web-7"]').get_attribute("data-flags")) > 0

            page.locator(f'tr[data-alert-id="{alert_id}"] button[data-action="ack"]').click()
            page.wait_for_selector(f'tr[data-alert-id="{alert_id}"][data-status="acknowledged"]', timeout=5_000)
            assert responder.store.get_alert(alert_id).status == "acknowledged"
        assert problems == []
        assert all(u.startswith(server.url) for u in requests), requests  # no CDN, nothing off the server
    finally:
        page.close()
        server.stop()
        responder.close()
