"""Run files: ``anomalia fit --config run.yaml`` with the same keys as the command's flags."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .._core import InputError


def load_run_file(path: str | Path, allowed: Iterable[str]) -> dict[str, Any]:
    """Read a YAML mapping whose keys are flag names (``label-column`` or ``label_column``).

    Unknown keys raise :class:`InputError` listing the allowed ones, so a typo never goes unnoticed.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such run file; check the --config path")
    try:
        content = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{p} is not valid YAML ({first})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise InputError(f"{p} must hold a mapping of flag names to values (e.g. 'model: autoencoder')")
    allowed = sorted(allowed)
    out = {}
    for key, value in content.items():
        name = str(key).replace("-", "_")
        if name not in allowed:
            raise InputError(f"{p}: unknown key {key!r}; allowed keys are {[a.replace('_', '-') for a in allowed]}")
        out[name] = value
    return out
