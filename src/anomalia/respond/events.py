"""Events that are not one scored row (``drift``, ...): stored, grouped and notified like alerts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from .._core import InputError
from .config import SEVERITIES
from .inputs import jsonable
from .records import Alert, ProcessResult, fingerprint_of
from .schema import AlertRow, SilenceRow
from .severity import matches
from .state import _alert_record, _Batch, _Fp, _labels
from .store import alert_of

__all__ = ["EventMixin"]


class EventMixin:
    """:class:`~.engine.Responder`'s :meth:`raise_event` (it uses the store, clock, config and incident steps)."""

    store: Any
    config: Any
    clock: Any

    # ------------------------------------------------------------------------------------------- events
    def raise_event(
        self,
        *,
        kind: str,
        model: str,
        summary: str,
        severity: str = "major",
        entity: str | None = None,
        details: dict[str, Any] | None = None,
        key: str | None = None,
        at: float | None = None,
    ) -> Alert:
        """Raise an alert that is not one scored row (``kind="drift"``, ...): stored, grouped into an
        incident of its own fingerprint (model, entity, kind) and notified like the others.

        ``key`` makes it idempotent (the same key again returns the stored alert); by default every call is
        a new event.
        """
        if severity not in SEVERITIES:
            raise InputError(f"severity: expected one of {list(SEVERITIES)}; got {severity!r}")
        if not kind or not isinstance(kind, str):
            raise InputError("kind: name the kind of event (e.g. 'drift')")
        now = self.clock()
        t = now if at is None else float(at)
        fp = fingerprint_of(model, entity, kind)
        row_key = f"event:{key or uuid.uuid4()}"
        with self.store.session() as s:
            old = s.scalar(select(AlertRow).where(AlertRow.fingerprint == fp, AlertRow.row_key == row_key))
            if old is not None:
                return alert_of(old)
            states = self._load_states(s, {fp})
            st = states.setdefault(fp, _Fp())
            st.dirty, st.updated_at = True, max(st.updated_at, t)
            batch = _Batch()
            alert = {
                "id": str(uuid.uuid4()),
                "fingerprint": fp,
                "row_key": row_key[:200],
                "kind": kind,
                "incident_id": None,
                "status": "firing",
                "severity": severity,
                "starts_at": t,
                "ends_at": None,
                "created_at": now,
                "score": None,
                "p_value": None,
                "threshold": None,
                "model": model,
                "model_version": "",
                "entity": entity,
                "row": None,
                "time": None,
                "summary": summary,
                "runbook_url": self.config.runbook_url,
                "contributions": [],
                "inputs": {},
                "details": jsonable(details or {}),
            }
            labels = _labels(alert)
            silenced = any(
                matches(labels, r.matchers)
                for r in s.scalars(select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now))
            )
            inc = st.incident
            if inc is not None and t - inc["last_flag_at"] > self.config.incidents.gap:
                self._close(batch, st, inc["last_flag_at"], now, "gap", None)
                inc = None
            if inc is None:
                inc = self._open(batch, st, alert, t, ProcessResult())
            self._attach(inc, alert, t, batch)
            if silenced:
                alert["status"] = "suppressed"
            elif not inc["notified"] and not inc["flapping"]:
                self._notify_open(s, batch, st, inc, now)
            batch.alerts.append(alert)
            self._write(s, batch, states)
            return _alert_record(alert)
