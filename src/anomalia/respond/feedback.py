"""Feedback on alerts (ack, resolve, false positive, new normal) and the rows kept as normal data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .._core import InputError
from .records import Alert
from .schema import AlertRow, AuditRow, FeedbackRow, IncidentRow, NotificationAlertRow, NotificationRow, SilenceRow
from .state import _CHUNK, _Batch, _Fp, _incident_dict
from .store import _find_alert, alert_of

__all__ = ["FEEDBACK_ACTIONS", "FeedbackMixin"]

#: Feedback an operator can give on an alert.
FEEDBACK_ACTIONS = ("ack", "resolve", "false-positive", "new-normal")


class FeedbackMixin:
    """:class:`~.engine.Responder`'s feedback methods (they use its store, clock, config and incident steps)."""

    store: Any
    config: Any
    clock: Any

    def feedback(self, alert_id: str, action: str, *, who: str, comment: str | None = None) -> Alert:
        """Record an operator's word on an alert (``ack``, ``resolve``, ``false-positive``, ``new-normal``).

        ``ack`` mutes repeat notifications of its incident until it resolves; ``resolve`` closes the
        incident (its resolve notification goes through the outbox); ``false-positive`` and ``new-normal``
        also keep the row's input values with the model version (:meth:`feedback_rows`), silence the
        fingerprint for ``feedback.mute`` and cancel its notifications not yet delivered. Each is written to
        the audit log with who, when and the comment.
        """
        if action not in FEEDBACK_ACTIONS:
            raise InputError(f"action: expected one of {list(FEEDBACK_ACTIONS)}; got {action!r}")
        if not who or not str(who).strip():
            raise InputError("who: say who gives the feedback (e.g. --who alice)")
        now = self.clock()
        with self.store.session() as s:
            row = _find_alert(s, alert_id)
            inc = s.get(IncidentRow, row.incident_id) if row.incident_id else None
            batch = _Batch()
            states: dict[str, _Fp] = {}
            if action == "ack":
                row.status = "acknowledged" if row.status == "firing" else row.status
                if inc is not None and inc.status == "open":
                    inc.status, inc.acked_by = "acknowledged", who
                    s.execute(
                        update(AlertRow)
                        .where(AlertRow.incident_id == inc.id, AlertRow.status == "firing")
                        .values(status="acknowledged")
                    )
            else:
                row.status = "resolved"
                row.ends_at = row.ends_at or now
                if action in ("false-positive", "new-normal"):
                    self._mute(s, row, now, who, action)
                    s.add(
                        FeedbackRow(
                            alert_id=row.id,
                            kind=action,
                            model=row.model,
                            model_version=row.model_version,
                            row_key=row.row_key,
                            inputs=row.inputs or {},
                            at=now,
                            who=who,
                        )
                    )
                    s.flush()
                if inc is not None and inc.status != "closed":
                    states = self._load_states(s, {inc.fingerprint})
                    st = states.setdefault(inc.fingerprint, _Fp(exists=True))
                    if st.incident is None or st.incident["id"] != inc.id:
                        st.incident = {**_incident_dict(inc), "_pending": []}
                    st.incident["closed_by"] = f"{action}:{who}"
                    # a resolve goes only where the firing may have gone: not after every one was cancelled
                    st.incident["notified"] = st.incident["notified"] and self._announced(s, inc.id)
                    s.expunge(inc)
                    self._close(batch, st, now, now, action, None)
            s.add(
                AuditRow(
                    at=now,
                    who=who,
                    action=action,
                    alert_id=row.id,
                    incident_id=row.incident_id,
                    comment=comment,
                    detail={"fingerprint": row.fingerprint},
                )
            )
            s.flush()
            self._write(s, batch, states)
            return alert_of(row)

    def _announced(self, s: Session, incident_id: str) -> bool:
        """Whether a firing notification of the incident was delivered or may still be."""
        q = (
            select(NotificationRow.id)
            .join(NotificationAlertRow, NotificationRow.id == NotificationAlertRow.notification_id)
            .where(
                NotificationAlertRow.incident_id == incident_id,
                NotificationRow.kind.in_(("firing", "repeat")),
                NotificationRow.status.in_(("pending", "delivered", "dead")),
            )
            .limit(1)
        )
        return s.scalar(q) is not None

    def _mute(self, s: Session, row: AlertRow, now: float, who: str, action: str) -> None:
        """Silence the fingerprint and cancel its notifications that have not gone out yet."""
        s.add(
            SilenceRow(
                id=str(uuid.uuid4()),
                matchers={"fingerprint": row.fingerprint},
                starts_at=now,
                ends_at=now + self.config.feedback_mute,
                created_by=who,
                comment=f"{action} on alert {row.id}",
                created_at=now,
            )
        )
        s.flush()
        ids = [a for (a,) in s.execute(select(AlertRow.id).where(AlertRow.fingerprint == row.fingerprint))]
        pending = set()
        for k in range(0, len(ids), _CHUNK):
            q = (
                select(NotificationAlertRow.notification_id)
                .join(NotificationRow, NotificationRow.id == NotificationAlertRow.notification_id)
                .where(
                    NotificationAlertRow.alert_id.in_(ids[k : k + _CHUNK]),
                    NotificationRow.status == "pending",
                    NotificationRow.kind.in_(("firing", "repeat", "action")),
                )
            )
            pending.update(n for (n,) in s.execute(q))
        for nid in pending:
            others = s.scalar(
                select(NotificationAlertRow.alert_id)
                .where(NotificationAlertRow.notification_id == nid, NotificationAlertRow.alert_id.not_in(ids))
                .limit(1)
            )
            n = s.get(NotificationRow, nid)
            if n is None:
                continue
            if others is None:
                n.status, n.last_error = "cancelled", f"{action} by {who}"
            elif n.payload is None:
                s.execute(
                    delete(NotificationAlertRow).where(
                        NotificationAlertRow.notification_id == nid, NotificationAlertRow.alert_id.in_(ids)
                    )
                )

    def feedback_rows(
        self, model_name: str | None = None, kinds: Sequence[str] = ("false-positive", "new-normal")
    ) -> list[dict[str, Any]]:
        """The rows operators called normal: ``{alert_id, kind, model, model_version, row_key, inputs, at,
        who}``, oldest first: candidate normal data for adapting the model."""
        q = select(FeedbackRow).where(FeedbackRow.kind.in_(list(kinds))).order_by(FeedbackRow.id)
        if model_name is not None:
            q = q.where(FeedbackRow.model == model_name)
        with self.store.session() as s:
            return [
                {
                    "alert_id": r.alert_id,
                    "kind": r.kind,
                    "model": r.model,
                    "model_version": r.model_version,
                    "row_key": r.row_key,
                    "inputs": r.inputs,
                    "at": r.at,
                    "who": r.who,
                }
                for r in s.scalars(q)
            ]
