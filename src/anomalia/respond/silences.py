"""Silences and maintenance windows: label matchers over a time range."""

from __future__ import annotations

import uuid
from typing import Any

from .._core import InputError
from .schema import AuditRow, SilenceRow

__all__ = ["SilenceMixin"]


class SilenceMixin:
    """:class:`~.engine.Responder`'s silence methods."""

    store: Any
    clock: Any

    def silence(
        self,
        matchers: dict[str, str],
        *,
        duration: float | str | None = None,
        starts_at: float | None = None,
        ends_at: float | None = None,
        who: str,
        comment: str | None = None,
    ) -> str:
        """Silence alerts whose labels match (``entity: web-1``, ``severity: ~major|minor``) for a time range
        (a maintenance window): they are stored as suppressed and notify nobody. Returns the silence id."""
        from .config import parse_duration

        if not matchers:
            raise InputError("matchers: give at least one label=value (model, entity, severity, fingerprint, kind)")
        if not who:
            raise InputError("who: say who sets the silence")
        now = self.clock()
        start = now if starts_at is None else float(starts_at)
        if ends_at is None:
            if duration is None:
                raise InputError("duration: give how long the silence lasts (e.g. 2h) or its end")
            ends_at = start + (
                parse_duration(duration, "duration") if not isinstance(duration, int | float) else duration
            )
        if ends_at <= start:
            raise InputError("ends_at: a silence must end after it starts")
        sid = str(uuid.uuid4())
        with self.store.session() as s:
            s.add(
                SilenceRow(
                    id=sid,
                    matchers={str(k): str(v) for k, v in matchers.items()},
                    starts_at=start,
                    ends_at=ends_at,
                    created_by=who,
                    comment=comment,
                    created_at=now,
                )
            )
            s.add(
                AuditRow(
                    at=now,
                    who=who,
                    action="silence",
                    alert_id=None,
                    incident_id=None,
                    comment=comment,
                    detail={"silence_id": sid, "matchers": matchers, "ends_at": ends_at},
                )
            )
        return sid

    def expire_silence(self, silence_id: str, *, who: str) -> None:
        now = self.clock()
        with self.store.session() as s:
            r = s.get(SilenceRow, silence_id)
            if r is None:
                raise InputError(f"no silence {silence_id!r}")
            r.ends_at = min(r.ends_at, now)
            s.add(
                AuditRow(
                    at=now,
                    who=who,
                    action="expire-silence",
                    alert_id=None,
                    incident_id=None,
                    comment=None,
                    detail={"silence_id": silence_id},
                )
            )
