"""The store's tables (SQLAlchemy 2 ORM). Times are UTC seconds since the epoch (float), the same on SQLite
and PostgreSQL; JSON columns hold contributions, inputs, labels and frozen notification payloads.

The schema is created and upgraded by the Alembic migrations in ``migrations/`` (run when a store opens);
a change here goes with a new migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AlertRow",
    "AuditRow",
    "Base",
    "FeedbackRow",
    "FlapRow",
    "IncidentRow",
    "NotificationAlertRow",
    "NotificationRow",
    "SilenceRow",
]


class Base(DeclarativeBase):
    pass


class AlertRow(Base):
    """One flagged row (or one raised event): unique by fingerprint and row key, so a re-run adds nothing."""

    __tablename__ = "alerts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    row_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="anomaly")
    incident_id: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    score: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str | None] = mapped_column(String(200), index=True)
    row: Mapped[int | None] = mapped_column(Integer)
    time: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    runbook_url: Mapped[str | None] = mapped_column(Text)
    contributions: Mapped[Any] = mapped_column(JSON)
    inputs: Mapped[Any] = mapped_column(JSON)
    details: Mapped[Any] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("fingerprint", "row_key", name="uq_alerts_fingerprint_row"),)


class IncidentRow(Base):
    """Consecutive flags of one fingerprint: start, end, peak, count, who acknowledged it, flapping."""

    __tablename__ = "incidents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    group_key: Mapped[str] = mapped_column(String(300))
    model: Mapped[str] = mapped_column(String(200))
    entity: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | open | acknowledged | closed
    severity: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[float] = mapped_column(Float, index=True)
    ends_at: Mapped[float | None] = mapped_column(Float)
    last_flag_at: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    peak_score: Mapped[float | None] = mapped_column(Float)
    min_p_value: Mapped[float | None] = mapped_column(Float)
    first_alert_id: Mapped[str | None] = mapped_column(String(36))
    last_alert_id: Mapped[str | None] = mapped_column(String(36))
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    last_notified_at: Mapped[float | None] = mapped_column(Float)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    acked_by: Mapped[str | None] = mapped_column(String(200))
    closed_by: Mapped[str | None] = mapped_column(String(200))


class FlapRow(Base):
    """Per fingerprint: the last n decisions ('1' flagged), the open incident, the flap counter."""

    __tablename__ = "flap_state"
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    history: Mapped[str] = mapped_column(String(1000), default="")
    incident_id: Mapped[str | None] = mapped_column(String(36))
    last_open_notified_at: Mapped[float | None] = mapped_column(Float)
    flap_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[float] = mapped_column(Float)


class NotificationRow(Base):
    """The transactional outbox: one row per notification and sink, written with the alerts it carries."""

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # also the Idempotency-Key
    sink: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # firing | resolved | repeat | event | action
    group_key: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead | cancelled
    created_at: Mapped[float] = mapped_column(Float)
    not_before: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_group", "sink", "group_key", "status"),
    )


class NotificationAlertRow(Base):
    """Which alerts (and incidents) a notification carries."""

    __tablename__ = "notification_alerts"
    notification_id: Mapped[str] = mapped_column(String(36), ForeignKey("notifications.id"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[str | None] = mapped_column(String(36), index=True)


class SilenceRow(Base):
    """A silence or maintenance window: label matchers (exact or ``~regex``) over a time range."""

    __tablename__ = "silences"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    matchers: Mapped[Any] = mapped_column(JSON)
    starts_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class AuditRow(Base):
    """Who did what when: feedback, silences, actions (exit code, duration, output tail), replays."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    who: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    alert_id: Mapped[str | None] = mapped_column(String(36), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(36))
    comment: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[Any] = mapped_column(JSON)


class FeedbackRow(Base):
    """A row someone said was normal (false positive / new normal), kept with the model version."""

    __tablename__ = "feedback_rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200), index=True)
    model_version: Mapped[str] = mapped_column(String(100))
    row_key: Mapped[str] = mapped_column(String(200))
    inputs: Mapped[Any] = mapped_column(JSON)
    at: Mapped[float] = mapped_column(Float)
    who: Mapped[str] = mapped_column(String(200))
