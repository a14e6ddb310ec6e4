"""``anomalia alerts ...``: list, show and give feedback on alerts, set silences, drain and replay the
outbox; and the ``score --respond`` hook. Heavy imports (SQLAlchemy, the store) happen inside the commands."""

from __future__ import annotations

import getpass
import json
import signal
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from .._core import InputError

alerts_app = typer.Typer(
    help="Alerts raised by `anomalia score --respond` (and the service / stream runner).", no_args_is_help=True
)

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="The response file (YAML).")]
WhoOpt = Annotated[str | None, typer.Option("--who", help="Who gives the feedback [the login name].")]
CommentOpt = Annotated[str | None, typer.Option("--comment", "-m", help="Why (kept in the audit log).")]


def _responder(config: str) -> Any:
    from ..respond import Responder, load_config

    return Responder(load_config(config))


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


_out = Console()


def _console() -> Console:
    return _out


def _kv_table(title: str, rows: list[tuple[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, str(v))
    return table


@alerts_app.command("list")
def list_(
    config: ConfigOpt,
    status: str | None = typer.Option(None, help="firing | acknowledged | resolved | suppressed"),
    severity: str | None = typer.Option(None, help="critical | major | minor"),
    entity: str | None = typer.Option(None, help="Only this entity."),
    since: str | None = typer.Option(None, help="Started at most this long ago (1h, 2d) or after an ISO time."),
    limit: int = typer.Option(50, min=1, help="Most alerts to show."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per alert, one per line."),
) -> None:
    """List alerts, newest first."""
    from rich.table import Table

    if status is not None and status not in ("firing", "acknowledged", "resolved", "suppressed"):
        raise InputError(f"--status: expected firing, acknowledged, resolved or suppressed; got {status!r}")
    if severity is not None and severity not in ("critical", "major", "minor"):
        raise InputError(f"--severity: expected critical, major or minor; got {severity!r}")
    with _responder(config) as r:
        alerts = r.store.list_alerts(status=status, severity=severity, entity=entity, since=since, limit=limit)
    if as_json:
        for a in alerts:
            sys.stdout.write(json.dumps(a.to_dict(), separators=(",", ":")) + "\n")
        return
    table = Table(title=f"Alerts ({len(alerts)})", title_justify="left")
    for col in ("id", "starts at", "status", "severity", "entity", "score", "p-value", "summary"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        d = a.to_dict()
        table.add_row(
            a.id[:8],
            d["starts_at"],
            a.status,
            a.severity,
            a.entity or "—",
            "—" if a.score is None else f"{a.score:.4g}",
            "—" if a.p_value is None else f"{a.p_value:.2g}",
            a.summary,
        )
    _console().print(table)


@alerts_app.command()
def show(
    alert_id: str = typer.Argument(..., help="Alert id (or a unique prefix of 6+ characters)."),
    config: ConfigOpt = ...,  # type: ignore[assignment]
    as_json: bool = typer.Option(False, "--json", help="The alert as one JSON object."),
) -> None:
    """Show one alert: what was flagged, why, its incident and its audit trail."""
    with _responder(config) as r:
        a = r.store.get_alert(alert_id)
        audit = r.store.audit(alert_id=a.id)
        inc = r.store.get_incident(a.incident_id).to_dict() if a.incident_id else None
    d = a.to_dict()
    if as_json:
        sys.stdout.write(json.dumps({**d, "incident": inc, "audit": audit}, separators=(",", ":")) + "\n")
        return
    rows: list[tuple[str, Any]] = [
        (k, d[k])
        for k in (
            "id",
            "summary",
            "status",
            "severity",
            "entity",
            "model",
            "model_version",
            "starts_at",
            "ends_at",
            "score",
            "p_value",
            "threshold",
            "row",
            "time",
            "runbook_url",
        )
        if d.get(k) is not None
    ]
    for c in a.contributions:
        extra = "".join(f", {k} {c[k]}" for k in ("observed", "expected") if c.get(k) is not None)
        rows.append((f"contribution {c['name']}", f"{c['share']:.1%}{extra}"))
    if inc:
        rows.append(("incident", f"{inc['id']} ({inc['status']}, {inc['count']} alerts since {inc['starts_at']})"))
    for e in audit:
        rows.append(("audit", f"{e['action']} by {e['who']}" + (f": {e['comment']}" if e["comment"] else "")))
    _console().print(_kv_table(f"Alert {a.id}", rows))


def _feedback(action: str, alert_id: str, config: str, who: str | None, comment: str | None) -> None:
    with _responder(config) as r:
        a = r.feedback(alert_id, action, who=_who(who), comment=comment)
    _console().print(f"{action}: alert {a.id} is now {a.status}", soft_wrap=True)


@alerts_app.command()
def ack(
    alert_id: str = typer.Argument(..., help="Alert id."),
    config: ConfigOpt = ...,  # type: ignore[assignment]
    who: WhoOpt = None,
    comment: CommentOpt = None,
) -> None:
    """Acknowledge: no more reminders of its incident until it resolves."""
    _feedback("ack", alert_id, config, who, comment)


@alerts_app.command()
def resolve(
    alert_id: str = typer.Argument(..., help="Alert id."),
    config: ConfigOpt = ...,  # type: ignore[assignment]
    who: WhoOpt = None,
    comment: CommentOpt = None,
) -> None:
    """Resolve: close its incident (the resolve notification goes out)."""
    _feedback("resolve", alert_id, config, who, comment)


@alerts_app.command("false-positive")
def false_positive(
    alert_id: str = typer.Argument(..., help="Alert id."),
    config: ConfigOpt = ...,  # type: ignore[assignment]
    who: WhoOpt = None,
    comment: CommentOpt = None,
) -> None:
    """False positive: resolve, mute the fingerprint and keep the row as normal data for the model."""
    _feedback("false-positive", alert_id, config, who, comment)


@alerts_app.command("new-normal")
def new_normal(
    alert_id: str = typer.Argument(..., help="Alert id."),
    config: ConfigOpt = ...,  # type: ignore[assignment]
    who: WhoOpt = None,
    comment: CommentOpt = None,
) -> None:
    """New normal: like false-positive, marked as a change of normal behaviour to adapt to."""
    _feedback("new-normal", alert_id, config, who, comment)


@alerts_app.command()
def silence(
    config: ConfigOpt,
    match: Annotated[
        list[str] | None, typer.Option("--match", help="label=value (or label=~regex); repeatable.")
    ] = None,
    duration: str | None = typer.Option(None, help="How long, e.g. 2h (from now or --start)."),
    start: str | None = typer.Option(None, help="Start as an ISO time (a maintenance window) [now]."),
    end: str | None = typer.Option(None, help="End as an ISO time (instead of --duration)."),
    who: WhoOpt = None,
    comment: CommentOpt = None,
    list_: bool = typer.Option(False, "--list", help="List the active silences instead."),
) -> None:
    """Silence alerts matching labels (model, entity, severity, kind, fingerprint) for a time range."""
    if list_:
        import time

        with _responder(config) as r:
            for s in r.store.list_silences(active_at=time.time()):
                sys.stdout.write(json.dumps(s.to_dict()) + "\n")
        return
    matchers: dict[str, str] = {}
    for m in match or []:
        k, sep, v = m.partition("=")
        if not sep or not k.strip():
            raise InputError(f"--match takes label=value (e.g. entity=web-1); got {m!r}")
        matchers[k.strip()] = v.strip()
    if not matchers:
        raise InputError("give at least one --match label=value")
    if duration is None and end is None:
        raise InputError("give --duration (e.g. 2h) or --end")
    with _responder(config) as r:
        sid = r.silence(
            matchers,
            duration=duration,
            starts_at=_time(start, "--start"),
            ends_at=_time(end, "--end"),
            who=_who(who),
            comment=comment,
        )
    _console().print(f"silence {sid} set for {matchers}", soft_wrap=True)


def _time(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{flag}: expected an ISO time such as 2026-12-02T03:00Z; got {text!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@alerts_app.command()
def deliver(
    config: ConfigOpt,
    follow: bool = typer.Option(False, "--follow", help="Keep delivering until SIGTERM / Ctrl-C."),
    poll: float = typer.Option(1.0, min=0.01, help="Seconds between rounds when nothing is due (--follow)."),
) -> None:
    """Drain the outbox into the sinks: once (what is due now), or with --follow until stopped."""
    from ..respond import Deliverer

    with _responder(config) as r:
        d = Deliverer(r)
        if follow:
            previous = signal.signal(signal.SIGTERM, lambda *_: d.stop())
            try:
                rep = d.run(poll=poll)
            finally:
                signal.signal(signal.SIGTERM, previous)
        else:
            rep = d.run_once()
            d.close()
        depth = r.store.outbox_depth()
    _console().print(
        f"delivered {rep.delivered}, retrying {rep.failed}, dead letters {rep.dead}, still queued {depth}",
        soft_wrap=True,
    )


@alerts_app.command()
def replay(
    config: ConfigOpt,
    ids: Annotated[list[str] | None, typer.Argument(help="Notification ids to replay [all dead letters].")] = None,
    who: WhoOpt = None,
) -> None:
    """Put dead letters back into the outbox (fresh attempts; same Idempotency-Key)."""
    with _responder(config) as r:
        n = r.replay(ids or None, who=_who(who))
    _console().print(f"replayed {n} dead letter(s); run `anomalia alerts deliver` to send them", soft_wrap=True)


class ScoreResponder:
    """The ``score --respond`` hook: each scored batch goes to :meth:`Responder.process` with its input rows."""

    def __init__(self, config: str, model_dir: str, data: str) -> None:
        from pathlib import Path

        from ..respond import Responder, load_config
        from ..workflows import model_info

        self.responder = Responder(load_config(config))
        entity = self.responder.config.entity
        #: read along with the model's features (and so copied to the output): the entity column
        self.extra_columns = [entity] if entity else []
        self.threshold = (model_info(model_dir).get("threshold") or {}).get("threshold")
        self.source = str(Path(data).resolve())
        self.alerts = self.duplicates = self.notifications = self.incidents = 0

    def __call__(self, rows: Any, inputs: Any) -> None:
        res = self.responder.process(rows, inputs=inputs, threshold=self.threshold, source=self.source)
        self.alerts += len(res.alerts)
        self.duplicates += res.duplicates
        self.notifications += res.notifications
        self.incidents += len(res.opened)

    def rows(self) -> list[tuple[str, Any]]:
        depth = self.responder.store.outbox_depth()
        self.responder.close()
        return [
            ("alerts raised", f"{self.alerts:,} ({self.duplicates:,} already stored)"),
            ("incidents opened", self.incidents),
            ("notifications queued", f"{self.notifications:,} (outbox: {depth:,}; `anomalia alerts deliver`)"),
        ]
