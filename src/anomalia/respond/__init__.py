"""Anomaly response: alerts, incidents, flap control, silences, durable delivery, actions and feedback.

No torch here: the package reads :class:`~anomalia.results.ScoredRows` and writes to a SQL store
(SQLAlchemy 2; SQLite in WAL mode by default, PostgreSQL by URL; Alembic migrations run when it opens).

The public API::

    from anomalia.respond import load_config, Responder

    responder = Responder(load_config("response.yaml"))      # or a dict with the same keys
    result = responder.process(scored, inputs=frame)         # -> ProcessResult: .alerts, .opened, .closed
    responder.deliver(once=True)                             # drain the outbox into the sinks
    responder.store.list_alerts(status="firing", severity="critical", entity="web-1", since="1h", limit=50)
    responder.store.get_alert(alert_id); responder.store.list_incidents(); responder.store.outbox_depth()
    responder.feedback(alert_id, "false-positive", who="alice", comment="backup job")
    responder.feedback_rows(model_name="m")                  # rows called normal, with the model version
    responder.silence({"entity": "web-1"}, duration="2h", who="alice")
    responder.raise_event(kind="drift", model="m", entity=None, summary="...", severity="major", details={})
    responder.replay()                                       # dead letters back into the outbox
    responder.close()

- :func:`load_config` / :class:`ResponseConfig`: the response file, checked key by key (:mod:`.config`);
- :class:`Responder`: process scored rows, incidents, flap control, events, replay (:mod:`.engine`), feedback
  (:mod:`.feedback`), silences (:mod:`.silences`); what a batch writes (:mod:`.state`);
- :class:`Alert`, :class:`Incident`, :class:`Silence`, :class:`Notification`: the records (:mod:`.records`);
- :class:`Deliverer`: the outbox drain with backoff, circuit breakers and dead letters (:mod:`.deliver`);
- sinks (:mod:`.sinks`): JSON webhook, Alertmanager webhook v4, Alertmanager push, JSON lines;
- actions (:mod:`.actions`): allowlisted commands with the alert on stdin.

The semantics (grouping, flap control, delivery guarantees) are written down in ``docs/response.md``.
"""

from __future__ import annotations

from .config import ResponseConfig, load_config, parse_duration
from .deliver import Deliverer, DeliveryReport
from .engine import FEEDBACK_ACTIONS, ProcessResult, Responder, fingerprint_of
from .records import Alert, Incident, Notification, Silence
from .store import Store

__all__ = [
    "FEEDBACK_ACTIONS",
    "Alert",
    "Deliverer",
    "DeliveryReport",
    "Incident",
    "Notification",
    "ProcessResult",
    "Responder",
    "ResponseConfig",
    "Silence",
    "Store",
    "fingerprint_of",
    "load_config",
    "parse_duration",
]
