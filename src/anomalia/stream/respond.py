"""The watcher's calls into the response engine (:mod:`anomalia.respond`): flagged points and drifts.

Each message is one row of a :class:`~anomalia.results.ScoredRows` whose ``row`` is the message's sequence
in its source (a Redis entry id ``MS-SEQ`` as ``MS * 2**20 + SEQ``; a line number for files) and whose
``time`` is the entry's time when the id carries it: the response engine's alert is unique per
fingerprint and row, so a message scored again after a crash adds no second alert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import ScoredRows

if TYPE_CHECKING:
    from .runner import Watcher
    from .sources import Message

SEQ_BITS = 20


def row_number(message_id: str) -> int:
    """A message id as one integer: ``MS-SEQ`` (Redis) -> ``MS << 20 | SEQ``; a line number as itself."""
    if "-" in message_id:
        ms, seq = message_id.split("-", 1)
        return (int(ms) << SEQ_BITS) | int(seq)
    return int(message_id)


def load_responder(path: str) -> Any:
    """An :class:`anomalia.respond.Responder` for the response file ``path``."""
    from ..respond import Responder, load_config

    return Responder(load_config(path))


def respond(watcher: Watcher, scored: dict[str, Any], messages: list[Message], results: list[dict[str, Any]]) -> int:
    """Hand the batch's points (all of them: flap control counts normal points too) and its drifts to the
    responder; returns the alerts it stored."""
    responder = watcher.responder
    ok = np.array([i not in scored["errors"] for i in range(len(messages))], dtype=bool)
    idx = np.flatnonzero(ok)
    n_alerts = 0
    model = watcher.model
    source = watcher.source.name
    if idx.size:
        part = ScoredRows(
            score=scored["score"][idx],
            p_value=scored["p_value"][idx],
            is_anomaly=scored["flag"][idx],
            row=np.array([row_number(messages[i].id) for i in idx], dtype=np.int64),
            model_name=model.name,
            model_version=model.version,
        )
        inputs = [dict(messages[i].record) for i in idx]
        entity = [scored["keys"][i] for i in idx] if watcher.key_field else None
        result = responder.process(part, inputs=inputs, entity=entity, source=source)
        n_alerts += len(result.alerts)
    for event in scored["drifts"]:
        restarted = "; calibration restarted" if event["rebaselined"] else ""
        responder.raise_event(
            kind="drift",
            model=model.name,
            entity=event["key"] if watcher.key_field else None,
            summary=(
                f"drift on {event['key'] or 'the stream'}: p-values {event['direction']} "
                f"(KS {event['statistic']:.3f} > {event['critical']:.3f}){restarted}"
            ),
            details={**event, "model_version": model.version, "source": source},
            key=f"drift:{source}:{event['key']}:{event['id']}",  # a replayed message raises it once
        )
        n_alerts += 1
    return n_alerts
