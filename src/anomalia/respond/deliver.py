"""The deliverer: drains the outbox at least once, idempotently, with bounded retries.

A round (:meth:`Deliverer.run_once`): run the responder's :meth:`~.engine.Responder.tick` (gap closes,
repeat notifications), claim the due notifications (``status = pending``, ``next_attempt_at <= now``, no
live lease; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several deliverers share the work), count the attempt
and freeze the payload in the same transaction, then send. A success marks the row delivered; a failure sets
the next attempt after a capped exponential backoff with full jitter (``uniform(0, min(cap, base * 2**n))``),
and after ``delivery.max_attempts`` attempts or ``delivery.max_age`` the row becomes a dead letter
(``anomalia alerts replay`` puts it back). A deliverer killed mid-send leaves a lease that expires after
``delivery.lease``; the next round sends the same frozen payload with the same ``Idempotency-Key``.

Each sink has a circuit breaker: after ``breaker.failures`` failures in a row it opens for
``breaker.cooldown`` (its notifications wait without spending attempts), then lets one attempt through.
Actions are run at most once: an action whose attempt was interrupted is not run again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from .records import iso
from .schema import AlertRow, IncidentRow, NotificationAlertRow, NotificationRow
from .sinks import SinkError, render, send
from .store import alert_of, incident_of

__all__ = ["Breaker", "Deliverer", "DeliveryReport", "backoff"]

log = logging.getLogger(__name__)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry ``attempt`` (1 = after the first failure): full jitter over a capped exponential."""
    return rng.uniform(0.0, min(cap, base * 2.0 ** max(attempt - 1, 0)))


@dataclass
class Breaker:
    """A sink's circuit breaker: closed, open until ``open_until``, half-open for one trial after it."""

    failures: int = 0
    open_until: float = 0.0

    def allows(self, now: float) -> bool:
        return now >= self.open_until

    def success(self) -> None:
        self.failures, self.open_until = 0, 0.0

    def failure(self, now: float, threshold: int, cooldown: float) -> None:
        self.failures += 1
        if self.failures >= threshold:
            self.open_until = now + cooldown


@dataclass
class DeliveryReport:
    """What one round did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    closed: int = 0
    repeats: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed + self.dead


class Deliverer:
    """Drains a :class:`~.engine.Responder`'s outbox into its sinks.

    Parameters
    ----------
    responder
        The responder whose store and config to use.
    rng
        Random generator of the backoff jitter (seeded by tests).
    client
        An ``httpx.Client`` to send with (default: one owned by the deliverer).
    workers
        Notifications sent at once in a round (threads; one HTTP connection pool).
    """

    def __init__(
        self, responder: Any, *, rng: random.Random | None = None, client: Any = None, workers: int = 8
    ) -> None:
        self.responder = responder
        self.config = responder.config
        self.store = responder.store
        self.clock: Callable[[], float] = responder.clock
        self.rng = rng or random.Random()
        self.sinks = {s.name: s for s in self.config.sinks}
        self.actions = {f"action:{a.name}": a for a in self.config.actions}
        self.breakers: dict[str, Breaker] = {name: Breaker() for name in self.sinks}
        self._client = client
        self._own_client = client is None
        self.stop_event = threading.Event()
        self._last_resend = 0.0
        self.workers = max(1, int(workers))
        self._executor: Any = None
        self._lock = threading.Lock()

    def _http(self) -> Any:
        if self._client is None and any(s.kind in ("webhook", "alertmanager") for s in self.sinks.values()):
            import httpx

            self._client = httpx.Client()
        return self._client

    # ------------------------------------------------------------------------------------------ claiming
    def _claim(self, now: float) -> list[tuple[str, str, int, float, dict[str, Any]]]:
        d = self.config.delivery
        blocked = [name for name, b in self.breakers.items() if not b.allows(now)]
        with self.store.session() as s:
            q = (
                select(NotificationRow)
                .where(
                    NotificationRow.status == "pending",
                    NotificationRow.next_attempt_at <= now,
                    (NotificationRow.lease_until.is_(None)) | (NotificationRow.lease_until < now),
                )
                .order_by(NotificationRow.next_attempt_at)
                .limit(d.batch)
            )
            if blocked:
                q = q.where(NotificationRow.sink.not_in(blocked))
            if self.store.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = list(s.scalars(q))
            out = []
            for r in rows:
                r.attempts += 1
                r.lease_until = now + d.lease
                if r.payload is None:
                    r.payload = self._payload(s, r)
                out.append((r.id, r.sink, r.attempts, r.created_at, r.payload))
            return out

    def _payload(self, s: Any, n: NotificationRow) -> dict[str, Any]:
        links = list(
            s.execute(
                select(NotificationAlertRow.alert_id, NotificationAlertRow.incident_id).where(
                    NotificationAlertRow.notification_id == n.id
                )
            )
        )
        alert_ids = [a for a, _ in links]
        inc_ids = sorted({i for _, i in links if i})
        alerts = (
            [alert_of(r).to_dict() for r in s.scalars(select(AlertRow).where(AlertRow.id.in_(alert_ids)))]
            if alert_ids
            else []
        )
        alerts.sort(key=lambda a: (a["starts_at"] or "", a["id"]))
        incidents = (
            [incident_of(r).to_dict() for r in s.scalars(select(IncidentRow).where(IncidentRow.id.in_(inc_ids)))]
            if inc_ids
            else []
        )
        return {
            "id": n.id,
            "kind": n.kind,
            "group_key": n.group_key,
            "created_at": iso(n.created_at),
            "alerts": alerts,
            "incidents": incidents,
        }

    # ------------------------------------------------------------------------------------------- a round
    def run_once(self) -> DeliveryReport:
        """One round: tick, claim what is due, send (up to ``workers`` at once), record. Returns what it did."""
        report = DeliveryReport()
        ticked = self.responder.tick()
        report.closed, report.repeats = ticked["closed"], ticked["repeats"]
        now = self.clock()
        claimed = self._claim(now)
        if claimed:
            self._http()  # made once, before the threads share it
            if len(claimed) == 1 or self.workers == 1:
                outcomes = [self._attempt(*c) for c in claimed]
            else:
                outcomes = list(self._pool().map(lambda c: self._attempt(*c), claimed))
            self._record(outcomes, report)
        self._resend_active(now)
        return report

    def _pool(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="anomalia-deliver")
        return self._executor

    def _attempt(
        self, nid: str, sink_name: str, attempts: int, created_at: float, payload: dict[str, Any]
    ) -> tuple[str, str, str | None, float | None, str | None]:
        """Send one claimed notification: (id, new status, error, next attempt at, sink whose breaker to move)."""
        d = self.config.delivery
        now = self.clock()
        if sink_name in self.actions:
            if attempts > 1:
                return nid, "dead", "an interrupted action is not run again (actions run at most once)", None, None
            from .actions import run_action

            detail = run_action(self.responder, self.actions[sink_name], payload)
            ok = detail.get("outcome") in ("ok", "dry-run")
            return nid, "delivered", None if ok else str(detail.get("outcome")), None, None
        sink = self.sinks.get(sink_name)
        if sink is None:
            return nid, "dead", f"no sink named {sink_name!r} in the response file", None, None
        breaker = self.breakers[sink_name]
        with self._lock:
            allowed = breaker.allows(now)
        if not allowed:  # opened by a failure earlier in this round
            return nid, "skipped", None, breaker.open_until, None
        body = render(sink, payload, self.config.incidents.group_by, self.config.incidents.max_alerts)
        try:
            send(sink, payload, body, self._http() if sink.kind in ("webhook", "alertmanager") else None)
        except SinkError as exc:
            with self._lock:
                breaker.failure(now, d.breaker_failures, d.breaker_cooldown)
            log.warning("delivery of %s to %s failed (attempt %d): %s", nid, sink_name, attempts, exc)
            if not exc.retry or attempts >= d.max_attempts or now - created_at > d.max_age:
                return nid, "dead", str(exc), None, sink_name
            return nid, "pending", str(exc), now + backoff(attempts, d.backoff_base, d.backoff_cap, self.rng), sink_name
        with self._lock:
            breaker.success()
        return nid, "delivered", None, None, sink_name

    def _record(
        self, outcomes: list[tuple[str, str, str | None, float | None, str | None]], report: DeliveryReport
    ) -> None:
        """Write a round's outcomes in one transaction."""
        now = self.clock()
        with self.store.session() as s:
            for nid, status, error, at, sink in outcomes:
                q = update(NotificationRow).where(NotificationRow.id == nid)
                if status == "skipped":
                    s.execute(q.values(attempts=NotificationRow.attempts - 1, lease_until=None, next_attempt_at=at))
                    report.skipped += 1
                elif status == "pending":
                    s.execute(q.values(lease_until=None, next_attempt_at=at, last_error=(error or "")[:1000]))
                    report.failed += 1
                else:
                    s.execute(
                        q.values(
                            status=status,
                            lease_until=None,
                            last_error=error,
                            delivered_at=now if status == "delivered" else None,
                        )
                    )
                    if status == "delivered":
                        report.delivered += 1
                    else:
                        report.dead += 1
                if error and status != "delivered":
                    report.errors.append(f"{sink}: {error}")

    def _resend_active(self, now: float) -> None:
        """Re-post the open incidents to Alertmanager push sinks every ``resend_interval`` (Alertmanager
        resolves alerts it has not heard of for a while); failures here are retried on the next interval."""
        pushes = [s for s in self.sinks.values() if s.kind == "alertmanager"]
        if not pushes or now - self._last_resend < min(s.resend_interval for s in pushes):
            return
        self._last_resend = now
        with self.store.session() as s:
            incs = list(
                s.scalars(
                    select(IncidentRow)
                    .where(IncidentRow.status.in_(("open", "acknowledged")), IncidentRow.notified.is_(True))
                    .limit(1000)
                )
            )
            ids = [i.last_alert_id for i in incs if i.last_alert_id]
            alerts = (
                [alert_of(r).to_dict() for r in s.scalars(select(AlertRow).where(AlertRow.id.in_(ids)))] if ids else []
            )
            payload = {
                "id": f"resend-{int(now)}",
                "kind": "repeat",
                "group_key": "{}",
                "alerts": alerts,
                "incidents": [incident_of(i).to_dict() for i in incs],
            }
        if not alerts:
            return
        for sink in pushes:
            try:
                send(sink, payload, render(sink, payload, ()), self._http())
            except SinkError as exc:
                log.warning("re-sending active alerts to %s failed: %s", sink.name, exc)

    # ------------------------------------------------------------------------------------------- a loop
    def run(self, poll: float = 1.0, max_rounds: int | None = None) -> DeliveryReport:
        """Rounds until :meth:`stop` (or ``max_rounds``); sleeps ``poll`` seconds when nothing was due."""
        total = DeliveryReport()
        rounds = 0
        try:
            while not self.stop_event.is_set():
                r = self.run_once()
                for k in ("delivered", "failed", "dead", "skipped", "closed", "repeats"):
                    setattr(total, k, getattr(total, k) + getattr(r, k))
                rounds += 1
                if max_rounds is not None and rounds >= max_rounds:
                    break
                if not r.attempted:
                    self.stop_event.wait(poll)
        finally:
            self.close()
        return total

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def drain(self, timeout: float = 60.0, poll: float = 0.05) -> DeliveryReport:
        """Rounds until the outbox holds nothing pending (or ``timeout``): for tests and one-shot runs."""
        total = DeliveryReport()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.run_once()
            for k in ("delivered", "failed", "dead", "skipped"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            if self.store.outbox_depth() == 0:
                break
            if not r.attempted:
                time.sleep(poll)
        return total
