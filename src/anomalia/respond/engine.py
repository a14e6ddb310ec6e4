"""The :class:`Responder`: flagged rows in, alerts, incidents and outbox rows out, in one transaction.

One pass over a batch of scored rows, in row order, per fingerprint (model, entity, rule):

1. a row already stored (same fingerprint and row key) is skipped: re-running a file adds nothing;
2. the flap window (the last n decisions) takes the row's decision; an incident opens when ``flap.open``
   (k of n) holds, and closes when ``flap.close`` (m of n normal) holds or no flag came within
   ``incidents.gap``;
3. a flagged row becomes an :class:`~.records.Alert`, attached to the open incident (count, peak, worst
   severity) or suppressed (below the open rule, silenced, or muted by feedback);
4. an incident that has lasted ``flap.min_duration``, is not silenced and is not flapping (opened within
   ``flap.suppress`` of the last notified opening of its fingerprint) is notified once: one outbox row per
   routed sink, bundled with the other incidents of its group (``incidents.group_by``) that open within
   ``group_wait`` (and, once the group has been notified, within ``group_interval``). Closing a notified
   incident queues its resolve notification the same way.

Notification grouping and repeats live in :mod:`.notify`, events that are not rows in :mod:`.events`.
Everything a batch implies (alerts, incidents, flap state, outbox rows and their links) is written in one
transaction, so an alert is never stored without the notifications it calls for (transactional outbox).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import Session

from .._core import InputError
from ..results import ScoredRows
from .config import ResponseConfig, load_config
from .events import EventMixin
from .feedback import FEEDBACK_ACTIONS, FeedbackMixin
from .inputs import entities_of, event_times, input_rows
from .notify import NotifyMixin
from .records import Incident, ProcessResult, fingerprint_of
from .schema import (
    AlertRow,
    AuditRow,
    FlapRow,
    IncidentRow,
    NotificationAlertRow,
    NotificationRow,
    SilenceRow,
)
from .severity import matches, severity_of, worst
from .silences import SilenceMixin
from .state import (
    _CHUNK,
    LINK_MARGIN,
    _alert_record,
    _Batch,
    _db_incident,
    _Fp,
    _incident_dict,
    _insert_alerts,
    _insert_ignore,
    _labels,
    _Rows,
    _upsert,
)
from .store import Store

__all__ = ["FEEDBACK_ACTIONS", "ProcessResult", "Responder", "fingerprint_of"]

log = logging.getLogger(__name__)


class Responder(FeedbackMixin, SilenceMixin, NotifyMixin, EventMixin):
    """Alerts, incidents, notifications and feedback over one response config and its store.

    Parameters
    ----------
    config
        A :class:`ResponseConfig`, a YAML path or a mapping (see :func:`load_config`).
    clock
        Seconds since the epoch now (``time.time`` by default; tests and benchmarks pass their own).
    """

    def __init__(self, config: ResponseConfig | str | Any, *, clock: Callable[[], float] | None = None) -> None:
        self.config = load_config(config)
        self.clock = clock or time.time
        self.store = Store(self.config.store)
        self._group_last: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------------------------------- process
    def process(
        self,
        scored: ScoredRows,
        *,
        inputs: Any = None,
        entity: Sequence[Any] | None = None,
        threshold: float | None = None,
        source: str = "",
    ) -> ProcessResult:
        """Turn a batch of scored rows into alerts and incidents, with their notifications in the outbox.

        Parameters
        ----------
        scored
            The rows a model scored (:class:`~anomalia.results.ScoredRows`).
        inputs
            The input rows aligned with ``scored`` (DataFrame, pyarrow table, list of dicts, dict of
            columns): their values go into each alert, and the config's entity column is read from them
            (also when it is not a model feature).
        entity
            One entity key per row, instead of the config's entity column.
        threshold
            The score threshold the rows were decided at (default: ``scored.threshold`` where it exists).
        source
            Names where the rows came from (a file) in the row key of rows identified by row number only,
            so that row 5 of two different files are two alerts; rows with a timestamp are keyed by it.
        """
        if not isinstance(scored, ScoredRows):
            raise InputError(f"scored: expected anomalia.results.ScoredRows; got {type(scored).__name__}")
        cfg = self.config
        now = self.clock()
        n = len(scored)
        res = ProcessResult(n_rows=n, n_flagged=scored.n_flagged)
        if n == 0:
            return res
        flags = np.asarray(scored.is_anomaly, dtype=bool)
        ents = entities_of(scored, inputs, entity, cfg.entity)
        model = scored.model_name or "model"
        fps_of_entity = {e: fingerprint_of(model, e) for e in set(ents)}
        fps = [fps_of_entity[e] for e in ents]
        times = event_times(scored, now)
        needs_normal = cfg.flap.open_n > 1 or cfg.flap.close_k > 0
        flagged_idx = np.flatnonzero(flags)
        relevant_fps = {fps[i] for i in flagged_idx}
        if threshold is None:
            threshold = getattr(scored, "threshold", None)
        with self.store.session() as s:
            states = self._load_states(s, relevant_fps if not needs_normal else set(fps))
            if needs_normal:
                relevant_fps = relevant_fps | {f for f, st in states.items() if st.exists}
            keys = {i: self._row_key(scored, i, source) for i in flagged_idx}
            seen = self._existing(s, [(fps[i], keys[i]) for i in flagged_idx])
            silences = [
                (r.id, r.matchers)
                for r in s.scalars(select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now))
            ]
            batch = _Batch()
            view = _Rows(scored)
            order = (
                np.flatnonzero(np.fromiter((f in relevant_fps for f in fps), bool, n)) if needs_normal else flagged_idx
            )
            new_rows = [i for i in order if not flags[i] or (fps[i], keys[i]) not in seen]
            res.duplicates = int(len(flagged_idx) - sum(1 for i in new_rows if flags[i]))
            values = input_rows(inputs, [i for i in new_rows if flags[i]]) if cfg.keep_inputs else None
            value_of = dict(zip([i for i in new_rows if flags[i]], values or [], strict=False))
            for i in new_rows:
                f = fps[i]
                st = states.setdefault(f, _Fp())
                t = float(times[i])
                if not flags[i] and st.exists and scored.time is not None and t <= st.updated_at:
                    continue  # a normal row already counted by an earlier run
                st.dirty = True
                st.updated_at = max(st.updated_at, t)
                inc = st.incident
                if inc is not None and t - inc["last_flag_at"] > cfg.incidents.gap:
                    self._close(batch, st, inc["last_flag_at"], now, "gap", res)
                    inc = None
                width = max(cfg.flap.open_n, cfg.flap.close_n, 1)
                st.history = (st.history + ("1" if flags[i] else "0"))[-width:]
                if not flags[i]:
                    if (
                        inc is not None
                        and cfg.flap.close_k
                        and st.history[-cfg.flap.close_n :].count("0") >= cfg.flap.close_k
                    ):
                        self._close(batch, st, t, now, "flap.close", res)
                    continue
                alert = self._alert(view, i, model, ents[i], f, keys[i], t, now, threshold, value_of.get(i, {}))
                labels = _labels(alert)
                silenced = next((sid for sid, m in silences if matches(labels, m)), None)
                if silenced is not None:
                    alert["details"] = {**alert["details"], "silenced_by": silenced}
                if inc is None:
                    if st.history[-cfg.flap.open_n :].count("1") >= cfg.flap.open_k:
                        inc = self._open(batch, st, alert, t, res)
                    else:
                        alert["status"] = "suppressed"
                        alert["details"] = {**alert["details"], "suppressed_by": "flap.open"}
                if inc is not None:
                    self._attach(inc, alert, t, batch)
                    if inc["flapping"] and st.last_open_notified_at is not None:
                        # still firing a whole suppress window after the last notified opening: no longer a flap
                        inc["flapping"] = t - st.last_open_notified_at < cfg.flap.suppress
                    if silenced is not None:
                        alert["status"] = "suppressed"
                    elif inc["status"] == "acknowledged":
                        alert["status"] = "acknowledged"
                    if silenced is None and not inc["notified"] and not inc["flapping"]:
                        if inc["last_flag_at"] - inc["starts_at"] >= cfg.flap.min_duration:
                            self._notify_open(s, batch, st, inc, now)
                    elif inc["_pending"] and silenced is None:
                        for nid in inc["_pending"]:
                            batch.links.append(
                                {"notification_id": nid, "alert_id": alert["id"], "incident_id": inc["id"]}
                            )
                batch.alerts.append(alert)
            self._write(s, batch, states)
            res.notifications = len(batch.notifications)
            res.alerts = [_alert_record(a) for a in batch.alerts]
        return res

    def _row_key(self, scored: ScoredRows, i: int, source: str) -> str:
        if scored.time is not None:
            return f"t:{scored.time[i]}"
        if scored.row is not None:
            return f"{source}#row:{int(scored.row[i])}"
        if scored.paths is not None:
            return f"path:{scored.paths[i]}"
        return f"u:{uuid.uuid4()}"

    def _load_states(self, s: Session, fps: set[str]) -> dict[str, _Fp]:
        out: dict[str, _Fp] = {}
        ids = sorted(fps)
        inc_ids: list[str] = []
        for k in range(0, len(ids), _CHUNK):
            q = select(FlapRow).where(FlapRow.fingerprint.in_(ids[k : k + _CHUNK]))
            if self.store.dialect == "postgresql":  # concurrent writers of one fingerprint take turns
                q = q.order_by(FlapRow.fingerprint).with_for_update()
            for r in s.scalars(q):
                out[r.fingerprint] = _Fp(r.history, None, r.last_open_notified_at, r.flap_count, r.updated_at, True)
                if r.incident_id:
                    inc_ids.append(r.incident_id)
        by_fp: dict[str, dict[str, Any]] = {}
        for k in range(0, len(inc_ids), _CHUNK):
            for r in s.scalars(select(IncidentRow).where(IncidentRow.id.in_(inc_ids[k : k + _CHUNK]))):
                if r.status != "closed":
                    by_fp[r.fingerprint] = _incident_dict(r)
        pending = self._pending_of([d["id"] for d in by_fp.values()], s)
        for f, d in by_fp.items():
            d["_pending"] = pending.get(d["id"], [])
            out[f].incident = d
        return out

    def _pending_of(self, incident_ids: list[str], s: Session) -> dict[str, list[str]]:
        """Unfrozen pending firing notifications of these incidents that a new alert may still join."""
        out: dict[str, list[str]] = {}
        cutoff = self.clock() + LINK_MARGIN
        for k in range(0, len(incident_ids), _CHUNK):
            q = (
                select(NotificationAlertRow.incident_id, NotificationRow.id)
                .join(NotificationRow, NotificationRow.id == NotificationAlertRow.notification_id)
                .where(
                    NotificationAlertRow.incident_id.in_(incident_ids[k : k + _CHUNK]),
                    NotificationRow.status == "pending",
                    NotificationRow.kind == "firing",
                    NotificationRow.payload.is_(None),
                    NotificationRow.not_before > cutoff,
                )
            )
            for iid, nid in s.execute(q):
                if nid not in out.setdefault(iid, []):
                    out[iid].append(nid)
        return out

    def _existing(self, s: Session, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for k in range(0, len(pairs), _CHUNK):
            chunk = pairs[k : k + _CHUNK]
            q = select(AlertRow.fingerprint, AlertRow.row_key).where(
                tuple_(AlertRow.fingerprint, AlertRow.row_key).in_(chunk)
            )
            out.update((a, b) for a, b in s.execute(q))
        return out

    def _alert(
        self,
        view: _Rows,
        i: int,
        model: str,
        entity: str | None,
        fp: str,
        row_key: str,
        t: float,
        now: float,
        threshold: float | None,
        values: dict[str, Any],
    ) -> dict[str, Any]:
        score, p = view.score[i], view.p[i]
        sev = severity_of(p, self.config.severity)
        contributions = view.contributions(i, values)
        time_text = None if view.time is None else str(view.time[i])
        row = None if view.row is None else view.row[i]
        where = f" on {entity}" if entity is not None else ""
        at = (
            f" at {time_text}"
            if time_text is not None
            else f" (row {row})"
            if row is not None
            else f" ({view.paths[i]})"
            if view.paths is not None
            else ""
        )
        top = ", ".join(f"{c['name']} {c['share']:.0%}" for c in contributions[:3])
        summary = f"{model}: {sev} anomaly{where}{at}, score {score:.4g}, p={p:.2g}" + (f"; top: {top}" if top else "")
        return {
            "id": str(uuid.uuid4()),
            "fingerprint": fp,
            "row_key": row_key[:200],
            "kind": "anomaly",
            "incident_id": None,
            "status": "firing",
            "severity": sev,
            "starts_at": t,
            "ends_at": None,
            "created_at": now,
            "score": score if math.isfinite(score) else None,
            "p_value": p if math.isfinite(p) else None,
            "threshold": None if threshold is None else float(threshold),
            "model": model,
            "model_version": view.version,
            "entity": entity,
            "row": row,
            "time": time_text,
            "summary": summary,
            "runbook_url": self.config.runbook_url,
            "contributions": contributions,
            "inputs": values,
            "details": {},
        }

    # ------------------------------------------------------------------------------------------ incidents
    def _group_key(self, labels: dict[str, Any]) -> str:
        return "{" + ",".join(f"{g}={labels.get(g, '')}" for g in self.config.incidents.group_by) + "}"

    def _open(self, batch: _Batch, st: _Fp, alert: dict[str, Any], t: float, res: ProcessResult) -> dict[str, Any]:
        cfg = self.config
        labels = _labels(alert)
        flapping = st.last_open_notified_at is not None and t - st.last_open_notified_at < cfg.flap.suppress
        if flapping:
            st.flap_count += 1
        inc = {
            "id": str(uuid.uuid4()),
            "fingerprint": alert["fingerprint"],
            "group_key": self._group_key(labels),
            "model": alert["model"],
            "entity": alert["entity"],
            "status": "open",
            "severity": alert["severity"],
            "starts_at": t,
            "ends_at": None,
            "last_flag_at": t,
            "count": 0,
            "peak_score": alert["score"],
            "min_p_value": alert["p_value"],
            "first_alert_id": alert["id"],
            "last_alert_id": alert["id"],
            "notified": False,
            "last_notified_at": None,
            "flapping": flapping,
            "acked_by": None,
            "closed_by": None,
            "_pending": [],
            "_labels": labels,
        }
        batch.new_incidents[inc["id"]] = inc
        st.incident = inc
        res.opened.append(inc["id"])
        return inc

    def _attach(self, inc: dict[str, Any], alert: dict[str, Any], t: float, batch: _Batch) -> None:
        alert["incident_id"] = inc["id"]
        inc["count"] += 1
        inc["last_flag_at"] = max(inc["last_flag_at"], t)
        inc["last_alert_id"] = alert["id"]
        inc["severity"] = worst(inc["severity"], alert["severity"])
        if alert["score"] is not None and (inc["peak_score"] is None or alert["score"] > inc["peak_score"]):
            inc["peak_score"] = alert["score"]
        if alert["p_value"] is not None and (inc["min_p_value"] is None or alert["p_value"] < inc["min_p_value"]):
            inc["min_p_value"] = alert["p_value"]
        inc.setdefault("_labels", {"model": inc["model"], "entity": inc["entity"], "fingerprint": inc["fingerprint"]})
        inc["_labels"] = {**inc["_labels"], "severity": inc["severity"]}
        if inc["id"] not in batch.new_incidents:
            batch.changed_incidents[inc["id"]] = inc

    def _close(self, batch: _Batch, st: _Fp, ends_at: float, now: float, why: str, res: ProcessResult | None) -> None:
        inc = st.incident
        if inc is None:
            return
        inc["status"] = "closed"
        inc["ends_at"] = ends_at
        inc["closed_by"] = inc.get("closed_by") or why
        if inc["id"] not in batch.new_incidents:
            batch.changed_incidents[inc["id"]] = inc
        batch.resolved_incidents.append((inc["id"], ends_at))
        if inc["notified"] and not inc["flapping"]:
            self._queue(batch, inc, "resolved", [inc["last_alert_id"]], now)
        st.incident = None
        st.dirty = True
        if res is not None:
            res.closed.append(inc["id"])

    def _write(self, s: Session, batch: _Batch, states: dict[str, _Fp]) -> None:
        # Core statements on the session's connection: the ORM's bulk path costs more than the database
        c = s.connection()
        dialect = self.store.dialect
        if batch.notifications:
            c.execute(insert(NotificationRow.__table__), list(batch.notifications.values()))
        if batch.new_incidents:
            c.execute(insert(IncidentRow.__table__), [_db_incident(d) for d in batch.new_incidents.values()])
        if batch.changed_incidents:
            s.execute(update(IncidentRow), [_db_incident(d) for d in batch.changed_incidents.values()])
        if batch.alerts:
            _insert_alerts(c, dialect, batch.alerts)
        if batch.links:
            c.execute(
                _insert_ignore(dialect, NotificationAlertRow.__table__, ["notification_id", "alert_id"]), batch.links
            )
        for iid, ends_at in batch.resolved_incidents:
            s.execute(
                update(AlertRow)
                .where(AlertRow.incident_id == iid, AlertRow.status.in_(("firing", "acknowledged")))
                .values(status="resolved", ends_at=ends_at)
            )
        rows = [
            {
                "fingerprint": f,
                "history": st.history,
                "incident_id": None if st.incident is None else st.incident["id"],
                "last_open_notified_at": st.last_open_notified_at,
                "flap_count": st.flap_count,
                "updated_at": st.updated_at,
            }
            for f, st in states.items()
            if st.dirty
        ]
        if rows:
            c.execute(_upsert(dialect, FlapRow.__table__, ["fingerprint"]), rows)
        if batch.audit:
            c.execute(insert(AuditRow.__table__), batch.audit)

    # ------------------------------------------------------------------------------------------ delivery
    def deliver(self, once: bool = True, **kwargs: Any) -> Any:
        """Drain the outbox once (returns what was done) or until stopped; see :class:`~.deliver.Deliverer`."""
        from .deliver import Deliverer

        d = Deliverer(self, **kwargs)
        return d.run_once() if once else d.run()

    def replay(self, notification_ids: Sequence[str] | None = None, *, who: str = "anomalia") -> int:
        """Put dead letters (all, or these ids) back in the outbox with fresh attempts; returns how many."""
        now = self.clock()
        with self.store.session() as s:
            q = update(NotificationRow).where(NotificationRow.status == "dead")
            if notification_ids:
                q = q.where(NotificationRow.id.in_(list(notification_ids)))
            n = s.execute(
                q.values(status="pending", attempts=0, next_attempt_at=now, lease_until=None, created_at=now)
            ).rowcount
            s.add(
                AuditRow(
                    at=now,
                    who=who,
                    action="replay",
                    alert_id=None,
                    incident_id=None,
                    comment=None,
                    detail={"count": n, "ids": list(notification_ids or [])},
                )
            )
        return int(n or 0)

    def incident(self, incident_id: str) -> Incident:
        return self.store.get_incident(incident_id)

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()

    def __enter__(self) -> Responder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
