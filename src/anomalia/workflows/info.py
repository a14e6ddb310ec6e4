"""``info``: what a model folder holds, from its manifest alone (no weights are read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import bundle


def model_info(path: str | Path) -> dict[str, Any]:
    """What ``anomalia info`` shows: manifest fields and the saved preprocessing, without loading weights
    (:func:`anomalia.bundle.describe`)."""
    return bundle.describe(path)
