"""The public records the store hands out: :class:`Alert`, :class:`Incident`, :class:`Silence`,
:class:`Notification` (plain dataclasses, JSON-ready through ``to_dict``)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Alert", "Incident", "Notification", "ProcessResult", "Silence", "fingerprint_of", "iso"]


def iso(t: float | None) -> str | None:
    """ISO 8601 UTC text of epoch seconds (None stays None)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


@dataclass
class Alert:
    """One flagged row (or raised event) with what the model saw and why it flagged it.

    ``contributions`` holds dicts ``{name, share, observed, expected}`` (observed / expected are None where
    the model gives none); ``inputs`` the input values of the row; times are epoch seconds (UTC).
    """

    id: str
    fingerprint: str
    status: str
    severity: str
    starts_at: float
    ends_at: float | None
    created_at: float
    score: float | None
    p_value: float | None
    threshold: float | None
    model: str
    model_version: str
    entity: str | None
    summary: str
    row_key: str
    kind: str = "anomaly"
    incident_id: str | None = None
    row: int | None = None
    time: str | None = None
    runbook_url: str | None = None
    contributions: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        """The labels silences, routing and grouping match on."""
        out = {"model": self.model, "severity": self.severity, "kind": self.kind, "fingerprint": self.fingerprint}
        if self.entity is not None:
            out["entity"] = self.entity
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times as ISO 8601 UTC text, NaN as None."""
        d = asdict(self)
        d["starts_at"], d["ends_at"], d["created_at"] = iso(self.starts_at), iso(self.ends_at), iso(self.created_at)
        for k in ("score", "p_value", "threshold"):
            d[k] = _num(d[k])
        d["labels"] = self.labels
        return d


@dataclass
class Incident:
    """Consecutive flags of one fingerprint within the gap: start, end, peak, count, state."""

    id: str
    fingerprint: str
    group_key: str
    model: str
    entity: str | None
    status: str
    severity: str
    starts_at: float
    ends_at: float | None
    last_flag_at: float
    count: int
    peak_score: float | None
    min_p_value: float | None
    first_alert_id: str | None
    last_alert_id: str | None
    notified: bool
    flapping: bool
    acked_by: str | None = None
    closed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("starts_at", "ends_at", "last_flag_at"):
            d[k] = iso(d[k])
        d["peak_score"], d["min_p_value"] = _num(self.peak_score), _num(self.min_p_value)
        return d


@dataclass
class Silence:
    """Label matchers (``value`` exact, ``~regex`` a full match) muting alerts between two times."""

    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["starts_at"], d["ends_at"] = iso(self.starts_at), iso(self.ends_at)
        return d


@dataclass
class Notification:
    """One outbox entry: a message to one sink; its id is the ``Idempotency-Key`` of every delivery."""

    id: str
    sink: str
    kind: str
    group_key: str
    status: str
    created_at: float
    attempts: int
    last_error: str | None
    delivered_at: float | None
    alert_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"], d["delivered_at"] = iso(self.created_at), iso(self.delivered_at)
        return d


def fingerprint_of(model: str, entity: str | None, rule: str = "anomaly") -> str:
    """The stable key of one model, entity and rule (32 hex characters)."""
    key = f"{model}\x1f{'' if entity is None else entity}\x1f{rule}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class ProcessResult:
    """What one :meth:`Responder.process` call did: the alerts it stored (duplicates of stored rows are
    counted, not returned), the incidents it opened and closed, the notifications it queued."""

    alerts: list[Alert] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    notifications: int = 0
    duplicates: int = 0
    n_rows: int = 0
    n_flagged: int = 0
