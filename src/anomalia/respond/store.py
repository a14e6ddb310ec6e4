"""The SQL store: SQLite (WAL) by default, PostgreSQL by URL; migrated with Alembic when it opens.

:class:`Store` holds the engine and reads records back (:meth:`Store.list_alerts`, :meth:`Store.get_alert`,
:meth:`Store.list_incidents`, :meth:`Store.outbox_depth`, ...); the writes are the :class:`~.engine.Responder`'s,
each in one transaction with the outbox rows it implies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .._core import InputError
from .records import Alert, Incident, Notification, Silence
from .schema import AlertRow, AuditRow, IncidentRow, NotificationAlertRow, NotificationRow, SilenceRow

__all__ = ["Store", "migrate"]

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic, on the engine's own connection)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _since(value: float | str | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    from datetime import UTC, datetime

    from .config import parse_duration

    try:
        return time.time() - parse_duration(value, "since")
    except InputError:
        pass
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"since: expected a duration back (e.g. 1h) or an ISO time; got {value!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


class Store:
    """The alert store at ``url`` (``sqlite:///alerts.db`` or ``postgresql://user@host/db``).

    Opening connects, checks the URL works (an unreachable server is an :class:`InputError` naming
    ``store``) and runs the migrations.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 60}
        else:
            kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": 10})
        self.engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            db = self.engine.url.database
            if db and db != ":memory:" and not Path(db).parent.exists():
                raise InputError(f"store: the folder of {db} does not exist; create it or change 'store'")
        try:
            migrate(self.engine)
        except OperationalError as exc:
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise InputError(f"store: cannot open {self.engine.url.render_as_string()} ({first})") from None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------------------------------------- reads
    def list_alerts(
        self,
        status: str | None = None,
        severity: str | None = None,
        entity: str | None = None,
        since: float | str | None = None,
        limit: int | None = None,
        *,
        model: str | None = None,
        incident_id: str | None = None,
    ) -> list[Alert]:
        """Alerts, newest first, filtered by status, severity, entity, model, incident and start time."""
        q = select(AlertRow).order_by(AlertRow.starts_at.desc(), AlertRow.created_at.desc())
        for col, value in (
            (AlertRow.status, status),
            (AlertRow.severity, severity),
            (AlertRow.entity, entity),
            (AlertRow.model, model),
            (AlertRow.incident_id, incident_id),
        ):
            if value is not None:
                q = q.where(col == value)
        t = _since(since)
        if t is not None:
            q = q.where(AlertRow.starts_at >= t)
        if limit is not None:
            q = q.limit(int(limit))
        with self.session() as s:
            return [alert_of(r) for r in s.scalars(q)]

    def get_alert(self, alert_id: str) -> Alert:
        """The alert ``alert_id`` (a unique prefix of at least 6 characters works too)."""
        with self.session() as s:
            row = _find_alert(s, alert_id)
            return alert_of(row)

    def list_incidents(
        self,
        status: str | None = None,
        entity: str | None = None,
        since: float | str | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        """Incidents, newest first."""
        q = select(IncidentRow).order_by(IncidentRow.starts_at.desc())
        if status is not None:
            q = q.where(IncidentRow.status == status)
        if entity is not None:
            q = q.where(IncidentRow.entity == entity)
        t = _since(since)
        if t is not None:
            q = q.where(IncidentRow.starts_at >= t)
        if limit is not None:
            q = q.limit(int(limit))
        with self.session() as s:
            return [incident_of(r) for r in s.scalars(q)]

    def get_incident(self, incident_id: str) -> Incident:
        with self.session() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise InputError(f"no incident {incident_id!r} in the store")
            return incident_of(row)

    def outbox_depth(self) -> int:
        """Notifications not yet delivered (pending, not dead)."""
        with self.session() as s:
            q = select(func.count()).select_from(NotificationRow).where(NotificationRow.status == "pending")
            return int(s.scalar(q) or 0)

    def list_notifications(self, status: str | None = None, limit: int | None = None) -> list[Notification]:
        q = select(NotificationRow).order_by(NotificationRow.created_at)
        if status is not None:
            q = q.where(NotificationRow.status == status)
        if limit is not None:
            q = q.limit(int(limit))
        with self.session() as s:
            rows = list(s.scalars(q))
            links: dict[str, list[str]] = {}
            if rows:
                ids = [r.id for r in rows]
                for nid, aid in s.execute(
                    select(NotificationAlertRow.notification_id, NotificationAlertRow.alert_id).where(
                        NotificationAlertRow.notification_id.in_(ids)
                    )
                ):
                    links.setdefault(nid, []).append(aid)
            return [
                Notification(
                    r.id,
                    r.sink,
                    r.kind,
                    r.group_key,
                    r.status,
                    r.created_at,
                    r.attempts,
                    r.last_error,
                    r.delivered_at,
                    sorted(links.get(r.id, [])),
                )
                for r in rows
            ]

    def list_silences(self, active_at: float | None = None) -> list[Silence]:
        q = select(SilenceRow).order_by(SilenceRow.starts_at)
        if active_at is not None:
            q = q.where(SilenceRow.starts_at <= active_at, SilenceRow.ends_at > active_at)
        with self.session() as s:
            return [silence_of(r) for r in s.scalars(q)]

    def audit(self, alert_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The audit log (oldest first): who did what when, with details."""
        q = select(AuditRow).order_by(AuditRow.id)
        if alert_id is not None:
            q = q.where(AuditRow.alert_id == alert_id)
        if limit is not None:
            q = q.limit(int(limit))
        with self.session() as s:
            return [
                {
                    "at": r.at,
                    "who": r.who,
                    "action": r.action,
                    "alert_id": r.alert_id,
                    "incident_id": r.incident_id,
                    "comment": r.comment,
                    "detail": r.detail,
                }
                for r in s.scalars(q)
            ]


def _find_alert(s: Session, alert_id: str) -> AlertRow:
    row = s.get(AlertRow, alert_id)
    if row is None and len(alert_id) >= 6:
        rows = list(s.scalars(select(AlertRow).where(AlertRow.id.like(f"{alert_id}%")).limit(2)))
        row = rows[0] if len(rows) == 1 else None
    if row is None:
        raise InputError(f"no alert {alert_id!r} in the store; `anomalia alerts list` shows the ids")
    return row


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()
    dbapi_conn.isolation_level = None  # transactions begin where SQLAlchemy says, as below


def _sqlite_begin(conn: Any) -> None:
    # A transaction takes SQLite's write lock when it begins (waiting up to busy_timeout), not at its first
    # write: a read-then-write transaction (process, claim) can then never fail on a snapshot another
    # process changed in between ("database is locked" without waiting).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alert_of(r: AlertRow) -> Alert:
    return Alert(
        id=r.id,
        fingerprint=r.fingerprint,
        status=r.status,
        severity=r.severity,
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        created_at=r.created_at,
        score=r.score,
        p_value=r.p_value,
        threshold=r.threshold,
        model=r.model,
        model_version=r.model_version,
        entity=r.entity,
        summary=r.summary,
        row_key=r.row_key,
        kind=r.kind,
        incident_id=r.incident_id,
        row=r.row,
        time=r.time,
        runbook_url=r.runbook_url,
        contributions=list(r.contributions or []),
        inputs=dict(r.inputs or {}),
        details=dict(r.details or {}),
    )


def incident_of(r: IncidentRow) -> Incident:
    return Incident(
        id=r.id,
        fingerprint=r.fingerprint,
        group_key=r.group_key,
        model=r.model,
        entity=r.entity,
        status=r.status,
        severity=r.severity,
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        last_flag_at=r.last_flag_at,
        count=r.count,
        peak_score=r.peak_score,
        min_p_value=r.min_p_value,
        first_alert_id=r.first_alert_id,
        last_alert_id=r.last_alert_id,
        notified=bool(r.notified),
        flapping=bool(r.flapping),
        acked_by=r.acked_by,
        closed_by=r.closed_by,
    )


def silence_of(r: SilenceRow) -> Silence:
    return Silence(r.id, dict(r.matchers or {}), r.starts_at, r.ends_at, r.created_by, r.comment)
