"""Notifications of incidents: grouping into one outbox row per sink and group, repeats and gap closes.

An incident is notified on every routed sink (``min_severity`` and ``match``), bundled with the other
incidents of its group (``incidents.group_by``) that open within ``group_wait`` of it and, once the group
has been notified, not before ``group_interval`` has passed. :meth:`NotifyMixin.tick` closes incidents
whose last flag is older than ``incidents.gap`` and queues repeats of unacknowledged open incidents.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .schema import IncidentRow, NotificationRow
from .severity import at_least, matches
from .state import LINK_MARGIN, _Batch, _Fp, _incident_dict, _notification

__all__ = ["NotifyMixin"]


class NotifyMixin:
    """:class:`~.engine.Responder`'s notification steps (they use its store, clock, config and incident steps)."""

    store: Any
    config: Any
    clock: Any
    _group_last: dict[tuple[str, str], float]

    def _notify_open(self, s: Session, batch: _Batch, st: _Fp, inc: dict[str, Any], now: float) -> None:
        inc["notified"] = True
        inc["last_notified_at"] = now
        st.last_open_notified_at = inc["starts_at"]
        inc["_pending"] = self._queue(batch, inc, "firing", [inc["first_alert_id"], inc["last_alert_id"]], now, s)
        for action in self.config.actions:
            if at_least(inc["severity"], action.min_severity) and matches(inc["_labels"], action.when):
                nid = str(uuid.uuid4())
                batch.notifications[nid] = _notification(
                    nid, f"action:{action.name}", "action", inc["group_key"], now, now
                )
                batch.links.append({"notification_id": nid, "alert_id": inc["last_alert_id"], "incident_id": inc["id"]})

    def _queue(
        self,
        batch: _Batch,
        inc: dict[str, Any],
        kind: str,
        alert_ids: list[str],
        now: float,
        s: Session | None = None,
    ) -> list[str]:
        """Add an incident's alerts to its group's next notification on every sink that takes it."""
        cfg = self.config.incidents
        out: list[str] = []
        labels = inc.get("_labels") or {"model": inc["model"], "entity": inc["entity"], "severity": inc["severity"]}
        for sink in self.config.sinks:
            if not at_least(inc["severity"], sink.min_severity) or not matches(labels, sink.match):
                continue
            gk = inc["group_key"]
            nid = next(
                (
                    k
                    for k, v in batch.notifications.items()
                    if v["sink"] == sink.name and v["group_key"] == gk and v["kind"] == kind
                ),
                None,
            )
            if nid is None and s is not None:
                nid = s.scalar(
                    select(NotificationRow.id)
                    .where(
                        NotificationRow.sink == sink.name,
                        NotificationRow.group_key == gk,
                        NotificationRow.kind == kind,
                        NotificationRow.status == "pending",
                        NotificationRow.payload.is_(None),
                        NotificationRow.not_before > now + LINK_MARGIN,
                    )
                    .limit(1)
                )
            if nid is None:
                last = self._last_group_time(s, sink.name, gk, kind)
                due = now + cfg.group_wait
                if last is not None and now - last < cfg.group_interval:
                    due = max(due, last + cfg.group_interval)
                if kind == "resolved":
                    due = now + min(cfg.group_wait, LINK_MARGIN)
                nid = str(uuid.uuid4())
                batch.notifications[nid] = _notification(nid, sink.name, kind, gk, now, due)
                self._group_last[(sink.name, gk + kind)] = due
            for aid in dict.fromkeys(alert_ids):
                link = {"notification_id": nid, "alert_id": aid, "incident_id": inc["id"]}
                if link not in batch.links:
                    batch.links.append(link)
            out.append(nid)
        return out

    def _last_group_time(self, s: Session | None, sink: str, gk: str, kind: str) -> float | None:
        cached = self._group_last.get((sink, gk + kind))
        if cached is not None or s is None:
            return cached
        q = select(NotificationRow.not_before).where(
            NotificationRow.sink == sink, NotificationRow.group_key == gk, NotificationRow.kind == kind
        )
        return s.scalar(q.order_by(NotificationRow.not_before.desc()).limit(1))

    # ---------------------------------------------------------------------------------------------- tick
    def tick(self) -> dict[str, int]:
        """Close incidents whose last flag is older than the gap and queue repeat notifications of open,
        unacknowledged incidents last notified more than ``repeat_interval`` ago. The deliverer calls it."""
        now = self.clock()
        cfg = self.config
        closed = repeats = 0
        with self.store.session() as s:
            batch = _Batch()
            stale = list(
                s.scalars(
                    select(IncidentRow).where(
                        IncidentRow.status.in_(("open", "acknowledged")),
                        IncidentRow.last_flag_at < now - cfg.incidents.gap,
                    )
                )
            )
            fps = {r.fingerprint for r in stale}
            states = self._load_states(s, fps) if fps else {}
            for r in stale:
                st = states.get(r.fingerprint)
                if st is None or st.incident is None or st.incident["id"] != r.id:
                    st = states.setdefault(r.fingerprint, _Fp(exists=True))
                    st.incident = {**_incident_dict(r), "_pending": []}
                self._close(batch, st, r.last_flag_at, now, "gap", None)
                closed += 1
            due = s.scalars(
                select(IncidentRow).where(
                    IncidentRow.status == "open",
                    IncidentRow.notified.is_(True),
                    IncidentRow.flapping.is_(False),
                    IncidentRow.last_notified_at < now - cfg.incidents.repeat_interval,
                )
            )
            for r in due:
                d = _incident_dict(r)
                self._queue(batch, d, "repeat", [r.last_alert_id or r.first_alert_id or ""], now)
                d["last_notified_at"] = now
                batch.changed_incidents[r.id] = d
                repeats += 1
            self._write(s, batch, states)
        return {"closed": closed, "repeats": repeats}
