"""Live streams: ``anomalia watch`` (Redis Streams consumer groups, growing files, stdin), per-key state
with an LRU spilled to SQLite and checkpointed with the offsets, online decisions, drift and adaptation.

One model serves every key; per key only a small state: the series detector's
:class:`~anomalia.StreamState` (context window, EWMA, streaming threshold) and the online decisions'
:class:`KeyState` (rolling calibration set, SPOT / DSPOT state, drift window, counters).
"""

from ..detectors.stream_state import StreamState
from .adapt import AdaptResult, absorb
from .online import Decider, KeyState, Online
from .runner import Watcher, WatchStats
from .sources import FileSource, Message, RedisSource, StdinSource, open_output, open_source
from .store import StateStore
from .versions import promote, read_pointer, rollback, versions_dir

__all__ = [
    "AdaptResult",
    "Decider",
    "FileSource",
    "KeyState",
    "Message",
    "Online",
    "RedisSource",
    "StateStore",
    "StdinSource",
    "StreamState",
    "WatchStats",
    "Watcher",
    "absorb",
    "open_output",
    "open_source",
    "promote",
    "read_pointer",
    "rollback",
    "versions_dir",
]
