"""Actions: a command from the response file, run with the alert as JSON on stdin.

Only the commands written in the response file can run (the alert's content never reaches the argument
list); each has a timeout, a concurrency cap and a rate limit, and can be a dry run. While it runs, the
alert's fingerprint is silenced; exit code, duration and the tail of its output go to the audit log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from typing import Any

from sqlalchemy import delete, func, select

from .config import ActionConfig
from .schema import AuditRow, SilenceRow

__all__ = ["run_action"]

_TAIL = 2000
_slots: dict[str, threading.BoundedSemaphore] = {}
_rate_locks: dict[str, threading.Lock] = {}


def run_action(responder: Any, action: ActionConfig, payload: dict[str, Any]) -> dict[str, Any]:
    """Run ``action`` for the alerts of ``payload`` (a frozen notification); returns what went to the audit."""
    store = responder.store
    now = responder.clock()
    alert = payload["alerts"][-1] if payload["alerts"] else {}
    detail: dict[str, Any] = {"action": action.name, "command": list(action.command), "notification_id": payload["id"]}
    with _rate_locks.setdefault(action.name, threading.Lock()), store.session() as s:
        # the rate check and the start record are one step, so runs in parallel threads cannot both pass it
        if action.rate_limit:
            started = s.scalar(
                select(func.count())
                .select_from(AuditRow)
                .where(
                    AuditRow.action == "action-start",
                    AuditRow.at > now - action.rate_window,
                    AuditRow.comment == action.name,
                )
            )
            if (started or 0) >= action.rate_limit:
                detail["outcome"] = "rate-limited"
                s.add(
                    AuditRow(
                        at=now,
                        who="anomalia",
                        action="action-skipped",
                        alert_id=alert.get("id"),
                        incident_id=alert.get("incident_id"),
                        comment=action.name,
                        detail=detail,
                    )
                )
                return detail
        s.add(
            AuditRow(
                at=now,
                who="anomalia",
                action="action-start",
                alert_id=alert.get("id"),
                incident_id=alert.get("incident_id"),
                comment=action.name,
                detail=dict(detail),
            )
        )
    slot = _slots.setdefault(action.name, threading.BoundedSemaphore(action.max_concurrent))
    if not slot.acquire(timeout=action.timeout):
        detail["outcome"] = "busy"
        _audit(store, now, alert, action, detail, "action-skipped")
        return detail
    silence_id = str(uuid.uuid4())
    try:
        if action.dry_run:
            detail.update(outcome="dry-run", exit_code=None, seconds=0.0)
            _audit(store, now, alert, action, detail, "action")
            return detail
        with store.session() as s:
            s.add(
                SilenceRow(
                    id=silence_id,
                    matchers={"fingerprint": alert.get("fingerprint", "")},
                    starts_at=now,
                    ends_at=now + action.timeout + 5,
                    created_by="anomalia",
                    comment=f"action {action.name} running",
                    created_at=now,
                )
            )
        start = time.perf_counter()
        try:
            code, output, timed_out = _run(list(action.command), json.dumps(alert), action.timeout)
            outcome = "timeout" if timed_out else "ok" if code == 0 else "failed"
            detail.update(outcome=outcome, exit_code=None if timed_out else code, output_tail=output[-_TAIL:])
        except OSError as exc:
            detail.update(outcome="failed", exit_code=None, output_tail=str(exc))
        detail["seconds"] = round(time.perf_counter() - start, 3)
        _audit(store, now, alert, action, detail, "action")
        return detail
    finally:
        slot.release()
        with store.session() as s:
            s.execute(delete(SilenceRow).where(SilenceRow.id == silence_id))


def _run(argv: list[str], stdin: str, timeout: float) -> tuple[int | None, str, bool]:
    """Run ``argv`` in its own process group; on timeout the whole group is killed (children included)."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(stdin, timeout=timeout)
        return proc.returncode, out or "", False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out or "", True


def _audit(
    store: Any, now: float, alert: dict[str, Any], action: ActionConfig, detail: dict[str, Any], kind: str
) -> None:
    with store.session() as s:
        s.add(
            AuditRow(
                at=now,
                who="anomalia",
                action=kind,
                alert_id=alert.get("id"),
                incident_id=alert.get("incident_id"),
                comment=action.name,
                detail=detail,
            )
        )
