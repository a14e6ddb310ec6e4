"""Where notifications go: a JSON webhook, the Prometheus Alertmanager webhook format (version 4), a push
client to an Alertmanager's ``/api/v2/alerts``, and JSON lines to a file or stdout.

A sink gets a frozen payload (the notification's id, kind, group key, alerts and incidents, as written when
it was first claimed) and either returns or raises :class:`SinkError`; every HTTP delivery of one
notification carries the same ``Idempotency-Key`` header (the notification's id).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from .config import SinkConfig

__all__ = ["SinkError", "alertmanager_alerts", "alertmanager_webhook", "render", "send"]

_ZERO_TIME = "0001-01-01T00:00:00Z"
_file_locks: dict[str, threading.Lock] = {}


class SinkError(Exception):
    """A delivery that failed; ``retry`` says whether another attempt may succeed (5xx, timeouts)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def _status(payload: dict[str, Any]) -> str:
    return "resolved" if payload["kind"] == "resolved" else "firing"


def _am_alert(a: dict[str, Any], inc: dict[str, Any] | None, resolved: bool) -> dict[str, Any]:
    labels = {
        "alertname": "AnomaliaAnomaly" if a.get("kind", "anomaly") == "anomaly" else f"Anomalia_{a['kind']}",
        "model": a["model"],
        "severity": (inc or a)["severity"],
    }
    if a.get("entity") is not None:
        labels["entity"] = str(a["entity"])
    annotations = {"summary": a["summary"], "alert_id": a["id"]}
    if inc is not None:
        annotations["incident_id"] = inc["id"]
        annotations["incident_count"] = str(inc["count"])
    for k in ("score", "p_value", "threshold"):
        if a.get(k) is not None:
            annotations[k] = f"{a[k]:.6g}"
    if a.get("runbook_url"):
        annotations["runbook_url"] = a["runbook_url"]
    top = a.get("contributions") or []
    if top:
        annotations["top_contributions"] = ", ".join(
            f"{c['name']} ({c['share']:.0%})" for c in top[:5] if c.get("share") is not None
        )
    ends = (inc or {}).get("ends_at") or a.get("ends_at")
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": a["starts_at"],
        "endsAt": ends if resolved and ends else _ZERO_TIME,
        "generatorURL": "",
        "fingerprint": a["fingerprint"],
    }


def _limited(payload: dict[str, Any], max_alerts: int) -> tuple[list[dict[str, Any]], int]:
    alerts = payload["alerts"]
    if max_alerts and len(alerts) > max_alerts:
        return alerts[:max_alerts], len(alerts) - max_alerts
    return alerts, 0


def alertmanager_webhook(
    payload: dict[str, Any], receiver: str, group_by: tuple[str, ...], max_alerts: int = 0
) -> dict[str, Any]:
    """The body Alertmanager's webhook receiver sends (version "4"), so on-call tooling can take it as is."""
    resolved = payload["kind"] == "resolved"
    incidents = {i["id"]: i for i in payload["incidents"]}
    alerts, truncated = _limited(payload, max_alerts)
    am = [_am_alert(a, incidents.get(a.get("incident_id") or ""), resolved) for a in alerts]
    common_labels = dict(am[0]["labels"]) if am else {}
    for x in am[1:]:
        common_labels = {k: v for k, v in common_labels.items() if x["labels"].get(k) == v}
    common_ann = dict(am[0]["annotations"]) if am else {}
    for x in am[1:]:
        common_ann = {k: v for k, v in common_ann.items() if x["annotations"].get(k) == v}
    return {
        "version": "4",
        "groupKey": payload["group_key"],
        "truncatedAlerts": truncated,
        "status": _status(payload),
        "receiver": receiver,
        "groupLabels": {k: v for k, v in common_labels.items() if k in group_by},
        "commonLabels": common_labels,
        "commonAnnotations": common_ann,
        "externalURL": "",
        "alerts": am,
    }


def alertmanager_alerts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts``: one postable alert per incident (its latest alert), with
    ``endsAt`` set on resolve."""
    resolved = payload["kind"] == "resolved"
    incidents = {i["id"]: i for i in payload["incidents"]}
    latest: dict[str, dict[str, Any]] = {}
    for a in payload["alerts"]:
        latest[a.get("incident_id") or a["id"]] = a
    out = []
    for key, a in latest.items():
        x = _am_alert(a, incidents.get(key), resolved)
        out.append(
            {k: x[k] for k in ("labels", "annotations", "startsAt", "generatorURL")}
            | ({"endsAt": x["endsAt"]} if resolved else {})
        )
    return out


def render(sink: SinkConfig, payload: dict[str, Any], group_by: tuple[str, ...], max_alerts: int = 0) -> Any:
    """What ``sink`` sends for ``payload`` (a JSON-ready value)."""
    if sink.kind == "alertmanager":
        return alertmanager_alerts(payload)
    if sink.kind == "webhook" and sink.format == "alertmanager":
        return alertmanager_webhook(payload, sink.name, group_by, max_alerts)
    alerts, truncated = _limited(payload, max_alerts)
    return {
        "version": "1",
        "id": payload["id"],
        "kind": payload["kind"],
        "status": _status(payload),
        "group_key": payload["group_key"],
        "sink": sink.name,
        "alerts": alerts,
        "incidents": payload["incidents"],
        "truncated_alerts": truncated,
    }


def send(sink: SinkConfig, payload: dict[str, Any], body: Any, client: Any = None) -> None:
    """Deliver ``body`` to ``sink``; raises :class:`SinkError` on failure."""
    data = json.dumps(body, separators=(",", ":"), allow_nan=False)
    if sink.kind in ("jsonl", "stdout"):
        line = (
            json.dumps(
                {"idempotency_key": payload["id"], **body}
                if isinstance(body, dict)
                else {"idempotency_key": payload["id"], "alerts": body},
                separators=(",", ":"),
            )
            + "\n"
        )
        if sink.kind == "stdout":
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        lock = _file_locks.setdefault(sink.target, threading.Lock())
        try:
            with lock, open(sink.target, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise SinkError(f"cannot append to {sink.target}: {exc.strerror or exc}") from None
        return
    import httpx

    url = sink.target + ("/api/v2/alerts" if sink.kind == "alertmanager" else "")
    headers = {"Content-Type": "application/json", "Idempotency-Key": payload["id"], **dict(sink.headers)}
    try:
        if client is not None:
            r = client.post(url, content=data, headers=headers, timeout=sink.timeout)
        else:
            r = httpx.post(url, content=data, headers=headers, timeout=sink.timeout)
    except httpx.HTTPError as exc:
        raise SinkError(f"{type(exc).__name__}: {exc}") from None
    if r.status_code >= 300:
        retry = r.status_code >= 500 or r.status_code in (408, 409, 425, 429)
        raise SinkError(f"HTTP {r.status_code} from {url}: {r.text[:200]}", retry=retry)
