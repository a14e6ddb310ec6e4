"""The response file (YAML) and its checks: :func:`load_config` gives a :class:`ResponseConfig`.

Every error names the key that is wrong and what it takes, so a typo never goes unnoticed: unknown keys,
durations that do not parse (``30s``, ``10m``, ``4h``, ``1d`` or seconds as a number), severities out of
order, ``k of n`` rules that cannot hold, store URLs that SQLAlchemy cannot read.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._core import InputError

__all__ = [
    "ActionConfig",
    "DeliveryConfig",
    "FlapConfig",
    "IncidentConfig",
    "ResponseConfig",
    "SinkConfig",
    "load_config",
    "parse_duration",
]

#: The severities, most severe first.
SEVERITIES = ("critical", "major", "minor")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: Any, key: str) -> float:
    """Seconds of a duration: a number (seconds) or text such as ``500ms``, ``30s``, ``10m``, ``4h``, ``1d``.

    >>> parse_duration("10m", "incidents.gap")
    600.0
    """
    if isinstance(value, bool):
        raise InputError(f"{key}: expected a duration such as 30s, 10m or 4h; got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise InputError(f"{key}: expected a duration such as 30s, 10m or 4h; got {value!r}")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not seconds >= 0:
        raise InputError(f"{key}: a duration cannot be negative; got {value!r}")
    return seconds


def _k_of_n(value: Any, key: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        k, n = value, value
    else:
        m = re.match(r"^\s*(\d+)\s*(?:of|/)\s*(\d+)\s*$", str(value))
        if not m:
            raise InputError(f"{key}: expected 'K of N' (e.g. '3 of 5'); got {value!r}")
        k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= k <= n or n > 1000:
        raise InputError(f"{key}: 'K of N' needs 1 <= K <= N <= 1000; got {value!r}")
    return k, n


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{key}: expected a mapping; got {type(value).__name__} {value!r}")
    return value


def _check_keys(value: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for k in value:
        if str(k) not in allowed:
            prefix = f"{where}." if where else ""
            raise InputError(
                f"unknown key {prefix}{k!r}; allowed keys{' of ' + where if where else ''} are {list(allowed)}"
            )


def _severity(value: Any, key: str) -> str:
    s = str(value).lower()
    if s not in SEVERITIES:
        raise InputError(f"{key}: expected one of {list(SEVERITIES)}; got {value!r}")
    return s


@dataclass(frozen=True)
class IncidentConfig:
    """How flags become incidents and how notifications are bundled (Alertmanager's timing semantics)."""

    gap: float = 600.0
    group_by: tuple[str, ...] = ("model", "entity")
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 14400.0
    max_alerts: int = 0


@dataclass(frozen=True)
class FlapConfig:
    """k of the last n points flagged open an incident, m of the last n normal close it (0 = only the gap)."""

    open_k: int = 1
    open_n: int = 1
    close_k: int = 0
    close_n: int = 0
    min_duration: float = 0.0
    suppress: float = 0.0


@dataclass(frozen=True)
class SinkConfig:
    """One destination of notifications: ``kind`` webhook | alertmanager | jsonl | stdout."""

    name: str
    kind: str
    target: str
    format: str = "json"
    min_severity: str = "minor"
    match: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0
    resend_interval: float = 60.0


@dataclass(frozen=True)
class ActionConfig:
    """A command run with the alert as JSON on stdin: only commands written in the response file can run."""

    name: str
    command: tuple[str, ...]
    when: tuple[tuple[str, str], ...] = ()
    min_severity: str = "minor"
    timeout: float = 30.0
    dry_run: bool = False
    max_concurrent: int = 1
    rate_limit: int = 0
    rate_window: float = 3600.0


@dataclass(frozen=True)
class DeliveryConfig:
    """Retry policy of the outbox: capped exponential backoff with full jitter, then the dead-letter state."""

    max_attempts: int = 12
    max_age: float = 86400.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    lease: float = 30.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    batch: int = 100


@dataclass(frozen=True)
class ResponseConfig:
    """A checked response file. Build it with :func:`load_config`."""

    store: str = "sqlite:///alerts.db"
    entity: str | None = None
    severity: tuple[float, float] = (1e-4, 1e-3)
    incidents: IncidentConfig = field(default_factory=IncidentConfig)
    flap: FlapConfig = field(default_factory=FlapConfig)
    sinks: tuple[SinkConfig, ...] = ()
    actions: tuple[ActionConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    runbook_url: str | None = None
    feedback_mute: float = 3600.0
    keep_inputs: bool = True
    source: str = "<mapping>"


TOP_KEYS = (
    "store",
    "entity",
    "severity",
    "incidents",
    "flap",
    "sinks",
    "actions",
    "delivery",
    "runbook_url",
    "feedback",
)


def load_config(source: str | Path | Mapping[str, Any] | ResponseConfig) -> ResponseConfig:
    """Read and check a response file (a YAML path) or a mapping with the same keys.

    Raises
    ------
    InputError
        Naming the key that is wrong: unknown keys, bad durations, severities, rules or store URLs.
    """
    if isinstance(source, ResponseConfig):
        return source
    where = "<mapping>"
    base = Path.cwd()
    if isinstance(source, str | Path):
        import yaml

        p = Path(source)
        where = str(p)
        if not p.is_file():
            raise InputError(f"{p}: no such response file; check the --config / --respond path")
        try:
            raw = yaml.safe_load(p.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{p} is not valid YAML ({first})") from None
        raw = {} if raw is None else raw
        base = p.resolve().parent
        if not isinstance(raw, Mapping):
            raise InputError(f"{p} must hold a mapping (e.g. 'store: sqlite:///alerts.db')")
    else:
        raw = source
        if not isinstance(raw, Mapping):
            raise InputError(f"a response config must be a mapping or a YAML path; got {type(raw).__name__}")
    try:
        return _build(raw, base, where)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _build(raw: Mapping[str, Any], base: Path, where: str) -> ResponseConfig:
    _check_keys(raw, TOP_KEYS, "")
    store = _store_url(raw.get("store", "sqlite:///alerts.db"), base)
    entity = raw.get("entity")
    if entity is not None and (not isinstance(entity, str) or not entity):
        raise InputError(f"entity: expected a column name; got {entity!r}")

    sev = _mapping(raw.get("severity"), "severity")
    _check_keys(sev, ("critical", "major"), "severity")
    crit, major = (_p_value(sev.get(k, d), f"severity.{k}") for k, d in (("critical", 1e-4), ("major", 1e-3)))
    if crit > major:
        raise InputError(f"severity.critical ({crit:g}) must be <= severity.major ({major:g}): smaller p = more severe")

    inc = _mapping(raw.get("incidents"), "incidents")
    _check_keys(inc, ("gap", "group_by", "group_wait", "group_interval", "repeat_interval", "max_alerts"), "incidents")
    group_by = inc.get("group_by", ["model", "entity"])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list | tuple) or not all(isinstance(g, str) for g in group_by):
        raise InputError(f"incidents.group_by: expected a list of labels (e.g. [entity]); got {group_by!r}")
    incidents = IncidentConfig(
        gap=parse_duration(inc.get("gap", "10m"), "incidents.gap"),
        group_by=tuple(group_by),
        group_wait=parse_duration(inc.get("group_wait", "30s"), "incidents.group_wait"),
        group_interval=parse_duration(inc.get("group_interval", "5m"), "incidents.group_interval"),
        repeat_interval=parse_duration(inc.get("repeat_interval", "4h"), "incidents.repeat_interval"),
        max_alerts=_int(inc.get("max_alerts", 0), "incidents.max_alerts", 0),
    )

    fl = _mapping(raw.get("flap"), "flap")
    _check_keys(fl, ("open", "close", "min_duration", "suppress"), "flap")
    ok, on = _k_of_n(fl.get("open", "1 of 1"), "flap.open")
    ck, cn = _k_of_n(fl["close"], "flap.close") if fl.get("close") is not None else (0, 0)
    flap = FlapConfig(
        ok,
        on,
        ck,
        cn,
        parse_duration(fl.get("min_duration", 0), "flap.min_duration"),
        parse_duration(fl.get("suppress", 0), "flap.suppress"),
    )

    sinks_raw = raw.get("sinks") or []
    if not isinstance(sinks_raw, list):
        raise InputError(f"sinks: expected a list of sinks (e.g. - {{jsonl: alerts.jsonl}}); got {sinks_raw!r}")
    sinks = tuple(_sink(s, i, base) for i, s in enumerate(sinks_raw))
    names = [s.name for s in sinks]
    if len(set(names)) != len(names):
        raise InputError(f"sinks: two sinks have the same name ({names}); give each a distinct 'name'")

    acts_raw = raw.get("actions") or []
    if not isinstance(acts_raw, list):
        raise InputError(f"actions: expected a list of actions; got {acts_raw!r}")
    actions = tuple(_action(a, i, base) for i, a in enumerate(acts_raw))

    dl = _mapping(raw.get("delivery"), "delivery")
    _check_keys(dl, ("max_attempts", "max_age", "backoff", "lease", "breaker", "batch"), "delivery")
    bo = _mapping(dl.get("backoff"), "delivery.backoff")
    _check_keys(bo, ("base", "cap"), "delivery.backoff")
    br = _mapping(dl.get("breaker"), "delivery.breaker")
    _check_keys(br, ("failures", "cooldown"), "delivery.breaker")
    delivery = DeliveryConfig(
        max_attempts=_int(dl.get("max_attempts", 12), "delivery.max_attempts", 1),
        max_age=parse_duration(dl.get("max_age", "24h"), "delivery.max_age"),
        backoff_base=parse_duration(bo.get("base", "1s"), "delivery.backoff.base"),
        backoff_cap=parse_duration(bo.get("cap", "5m"), "delivery.backoff.cap"),
        lease=parse_duration(dl.get("lease", "30s"), "delivery.lease"),
        breaker_failures=_int(br.get("failures", 5), "delivery.breaker.failures", 1),
        breaker_cooldown=parse_duration(br.get("cooldown", "30s"), "delivery.breaker.cooldown"),
        batch=_int(dl.get("batch", 100), "delivery.batch", 1),
    )
    fb = _mapping(raw.get("feedback"), "feedback")
    _check_keys(fb, ("mute", "keep_inputs"), "feedback")
    runbook = raw.get("runbook_url")
    return ResponseConfig(
        store=store,
        entity=entity,
        severity=(crit, major),
        incidents=incidents,
        flap=flap,
        sinks=sinks,
        actions=actions,
        delivery=delivery,
        runbook_url=None if runbook is None else str(runbook),
        feedback_mute=parse_duration(fb.get("mute", "1h"), "feedback.mute"),
        keep_inputs=bool(fb.get("keep_inputs", True)),
        source=where,
    )


def _p_value(value: Any, key: str) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{key}: expected a p-value between 0 and 1 (e.g. 1e-4); got {value!r}") from None
    if not 0 < p < 1:
        raise InputError(f"{key}: expected a p-value between 0 and 1 (e.g. 1e-4); got {value!r}")
    return p


def _int(value: Any, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{key}: expected a whole number >= {low}; got {value!r}")
    return value


def _store_url(value: Any, base: Path) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(value, str) or not value:
        raise InputError(
            f"store: expected a database URL (sqlite:///alerts.db or postgresql://user@host/db); got {value!r}"
        )
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise InputError(
            f"store: {value!r} is not a database URL; use sqlite:///alerts.db or postgresql://user@host/db"
        ) from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InputError(f"store: the {backend!r} database is not supported; use sqlite:/// or postgresql://")
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)
    db = url.database
    if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_absolute():
        url = url.set(database=str(base / db))  # relative to the response file
    return url.render_as_string(hide_password=False)


def _labels(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    m = _mapping(value, key)
    return tuple((str(k), str(v)) for k, v in m.items())


_SINK_KINDS = ("webhook", "alertmanager", "jsonl", "stdout")


def _sink(raw: Any, i: int, base: Path) -> SinkConfig:
    key = f"sinks[{i}]"
    if raw == "stdout":
        raw = {"stdout": True}
    m = _mapping(raw, key)
    _check_keys(
        m, (*_SINK_KINDS, "name", "format", "min_severity", "match", "headers", "timeout", "resend_interval"), key
    )
    kinds = [k for k in _SINK_KINDS if k in m]
    if len(kinds) != 1:
        raise InputError(f"{key}: give exactly one of {list(_SINK_KINDS)}; got {sorted(m)}")
    kind = kinds[0]
    target = m[kind]
    if kind in ("webhook", "alertmanager"):
        if not isinstance(target, str) or not re.match(r"^https?://[^/\s]+", target):
            raise InputError(f"{key}.{kind}: expected an http(s):// URL; got {target!r}")
        if kind == "alertmanager":
            target = target.rstrip("/")
    elif kind == "jsonl":
        if not isinstance(target, str) or not target:
            raise InputError(f"{key}.jsonl: expected a file path (or '-' for stdout); got {target!r}")
        if target == "-":
            kind, target = "stdout", "-"
        else:
            p = Path(target)
            target = str(p if p.is_absolute() else base / p)
    else:
        target = "-"
    fmt = str(m.get("format", "json"))
    if kind == "webhook" and fmt not in ("json", "alertmanager"):
        raise InputError(f"{key}.format: expected json or alertmanager; got {fmt!r}")
    if kind != "webhook" and "format" in m:
        raise InputError(f"{key}.format: only a webhook sink takes a format (json or alertmanager)")
    headers = _labels(m.get("headers"), f"{key}.headers")
    return SinkConfig(
        name=str(m.get("name", f"{kind}-{i}")),
        kind=kind,
        target=target,
        format=fmt,
        min_severity=_severity(m.get("min_severity", "minor"), f"{key}.min_severity"),
        match=_labels(m.get("match"), f"{key}.match"),
        headers=headers,
        timeout=parse_duration(m.get("timeout", "10s"), f"{key}.timeout"),
        resend_interval=parse_duration(m.get("resend_interval", "1m"), f"{key}.resend_interval"),
    )


def _action(raw: Any, i: int, base: Path) -> ActionConfig:
    key = f"actions[{i}]"
    m = _mapping(raw, key)
    allowed = ("command", "name", "when", "timeout", "dry_run", "max_concurrent", "rate_limit", "rate_window")
    _check_keys(m, allowed, key)
    cmd = m.get("command")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str | int | float) for c in cmd):
        raise InputError(
            f"{key}.command: expected a list of program and arguments (e.g. ['./restart.sh']); got {cmd!r}"
        )
    argv = [str(c) for c in cmd]
    prog = argv[0]
    if "/" in prog:
        p = Path(prog)
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise InputError(f"{key}.command: the program {prog!r} does not exist (looked at {p})")
        argv[0] = str(p)
    elif shutil.which(prog) is None:
        raise InputError(f"{key}.command: the program {prog!r} is not on PATH")
    when = dict(_labels(m.get("when"), f"{key}.when"))
    min_sev = _severity(when.pop("severity", "minor"), f"{key}.when.severity")
    return ActionConfig(
        name=str(m.get("name", f"action-{i}")),
        command=tuple(argv),
        when=tuple(when.items()),
        min_severity=min_sev,
        timeout=parse_duration(m.get("timeout", "30s"), f"{key}.timeout"),
        dry_run=bool(m.get("dry_run", False)),
        max_concurrent=_int(m.get("max_concurrent", 1), f"{key}.max_concurrent", 1),
        rate_limit=_int(m.get("rate_limit", 0), f"{key}.rate_limit", 0),
        rate_window=parse_duration(m.get("rate_window", "1h"), f"{key}.rate_window"),
    )
