"""The scoring service and live dashboard behind ``anomalia serve`` (FastAPI + Uvicorn; ``anomalia[serve]``).

- :func:`create_app` builds the ASGI application for one or more model folders;
- :class:`ModelRegistry` holds the loaded models, swaps a new version in atomically and keeps the previous
  one for rollback;
- :class:`MicroBatcher` gathers concurrent single-record requests into one :meth:`Model.score` pass;
- :class:`StreamStore` keeps each series key's :class:`~anomalia.detectors.stream_state.StreamState` in
  SQLite, so a restarted service resumes every key where it stopped.
"""

from __future__ import annotations

from .app import ServiceSettings, create_app
from .batcher import MicroBatcher
from .registry import ModelRegistry
from .streams import StreamStore

__all__ = ["MicroBatcher", "ModelRegistry", "ServiceSettings", "StreamStore", "create_app"]
