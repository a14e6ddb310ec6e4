"""The state of one live series, held by the caller: a fitted series detector is read-only while it scores.

One loaded model can serve many streams at once (threads, many entities): each stream keeps its own
:class:`StreamState` and passes it to ``detector.score_stream(new_points, state)``, which returns the scores
and the next state without changing the detector or the state it was given. The state is small (the last
``window`` steps, the EWMA level, the last timestamp, a streaming threshold's state) and serialisable with
:meth:`StreamState.to_dict` for checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StreamState:
    """Where one stream stands.

    Attributes
    ----------
    context : ndarray (k, channels), float32
        The last ``span - 1`` raw steps seen (fewer at the start of a stream): the history the next step's
        window reads.
    ewma : float, optional
        The smoothed score of the last step (detectors with ``smoothing``).
    last_time : Timestamp, optional
        Timestamp of the last step (timed series): new points must come after it.
    threshold : dict, optional
        The state of a streaming threshold (SPOT / DSPOT), as its ``to_dict`` gives it.
    n_seen : int
        Steps scored on this stream so far.
    """

    context: np.ndarray
    ewma: float | None = None
    last_time: pd.Timestamp | None = None
    threshold: dict[str, Any] | None = field(default=None)
    n_seen: int = 0

    def evolve(self, **changes: Any) -> StreamState:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_dict`)."""
        return {
            "context": self.context.tolist(),
            "channels": int(self.context.shape[1]),
            "ewma": self.ewma,
            "last_time": None if self.last_time is None else pd.Timestamp(self.last_time).isoformat(),
            "threshold": self.threshold,
            "n_seen": self.n_seen,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamState:
        context = np.asarray(d["context"], dtype=np.float32).reshape(-1, int(d["channels"]))
        last = d.get("last_time")
        return cls(
            np.ascontiguousarray(context),
            None if d.get("ewma") is None else float(d["ewma"]),
            None if last is None else pd.Timestamp(last),
            d.get("threshold"),
            int(d.get("n_seen", 0)),
        )
