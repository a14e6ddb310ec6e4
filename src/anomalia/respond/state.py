"""What a batch works on: the state of each fingerprint, what its transaction will write, the scored rows as
Python lists, and the SQL statements that write them (shared by the engine, feedback and silences)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..results import ScoredRows
from .inputs import jsonable
from .records import Alert
from .schema import AlertRow, IncidentRow

#: A notification still open to new alerts of its group is never one due within this many seconds, so a
#: deliverer never freezes a payload that a writer is adding to.
LINK_MARGIN = 5.0
_CHUNK = 500


@dataclass
class _Fp:
    """The in-memory state of one fingerprint during a batch."""

    history: str = ""
    incident: dict[str, Any] | None = None
    last_open_notified_at: float | None = None
    flap_count: int = 0
    updated_at: float = 0.0
    exists: bool = False
    dirty: bool = False


class _Batch:
    """What a transaction will write: new rows, changed incidents, outbox rows and their links."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.new_incidents: dict[str, dict[str, Any]] = {}
        self.changed_incidents: dict[str, dict[str, Any]] = {}
        self.notifications: dict[str, dict[str, Any]] = {}
        self.links: list[dict[str, Any]] = []
        self.resolved_incidents: list[tuple[str, float]] = []
        self.audit: list[dict[str, Any]] = []


def _labels(alert: dict[str, Any]) -> dict[str, Any]:
    out = {
        "model": alert["model"],
        "severity": alert["severity"],
        "kind": alert["kind"],
        "fingerprint": alert["fingerprint"],
    }
    if alert["entity"] is not None:
        out["entity"] = alert["entity"]
    return out


class _Rows:
    """A batch's columns as Python lists, converted once (indexing numpy arrays per row costs more)."""

    def __init__(self, scored: ScoredRows) -> None:
        self.score = np.asarray(scored.score, dtype=np.float64).tolist()
        self.p = np.asarray(scored.p_value, dtype=np.float64).tolist()
        self.row = None if scored.row is None else np.asarray(scored.row).tolist()
        self.time = scored.time
        self.paths = scored.paths
        self.version = scored.model_version or ""
        c = scored.contributions
        self.names = () if c is None else c.names
        self.index = None if c is None else c.index.tolist()
        self.share = None if c is None else c.share.tolist()
        self.extra = {
            k: (None if getattr(c, k, None) is None else np.asarray(getattr(c, k)).tolist())
            for k in ("observed", "expected", "normal_low", "normal_high")
        }

    def contributions(self, i: int, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Row ``i``'s top contributions: name, share, and observed / expected / normal range where known."""
        if self.index is None or self.share is None:
            return []
        out = []
        for j, (idx, share) in enumerate(zip(self.index[i], self.share[i], strict=True)):
            if idx < 0:
                continue
            name = self.names[idx]
            item: dict[str, Any] = {"name": name, "share": round(share, 6) if math.isfinite(share) else None}
            for k, arr in self.extra.items():
                item[k] = None if arr is None else jsonable(arr[i][j])
            if item["observed"] is None and name in values:
                item["observed"] = values[name]
            out.append(item)
        return out


def _incident_dict(r: IncidentRow) -> dict[str, Any]:
    d = {c: getattr(r, c) for c in IncidentRow.__table__.columns.keys()}  # noqa: SIM118
    d["_labels"] = {"model": r.model, "entity": r.entity, "severity": r.severity, "fingerprint": r.fingerprint}
    d.setdefault("_pending", [])
    return d


def _db_incident(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def _notification(nid: str, sink: str, kind: str, group_key: str, now: float, due: float) -> dict[str, Any]:
    return {
        "id": nid,
        "sink": sink,
        "kind": kind,
        "group_key": group_key,
        "status": "pending",
        "created_at": now,
        "not_before": due,
        "next_attempt_at": due,
        "lease_until": None,
        "attempts": 0,
        "payload": None,
        "last_error": None,
        "delivered_at": None,
    }


def _alert_record(a: dict[str, Any]) -> Alert:
    return Alert(**{k: v for k, v in a.items()})


_ALERT_COLUMNS = [col.name for col in AlertRow.__table__.columns]
_ALERT_JSON = {"contributions", "inputs", "details"}


def _insert_alerts(c: Any, dialect: str, alerts: list[dict[str, Any]]) -> None:
    """Many alert rows in one driver-level executemany (JSON columns serialised once, here): the write rate
    of a batch is the database's, not the binding layer's. A row already stored is left as it is."""
    mark = "%s" if dialect == "postgresql" else "?"
    cols = ", ".join(f'"{col}"' for col in _ALERT_COLUMNS)
    sql = (
        f"INSERT INTO alerts ({cols}) VALUES ({', '.join([mark] * len(_ALERT_COLUMNS))}) "
        "ON CONFLICT (fingerprint, row_key) DO NOTHING"
    )
    dumps = json.dumps
    rows = [
        tuple(dumps(a[col], allow_nan=False) if col in _ALERT_JSON else a[col] for col in _ALERT_COLUMNS)
        for a in alerts
    ]
    c.exec_driver_sql(sql, rows)


def _insert_ignore(dialect: str, table: Any, keys: list[str]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)


def _upsert(dialect: str, table: Any, keys: list[str]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    cols = [c.name for c in table.columns if c.name not in keys]
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in cols})
