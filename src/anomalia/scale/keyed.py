"""A folder of models, one per key (host, machine, customer): each a normal model folder, plus one index
file ``anomalia-index.json`` naming the key column and which folder serves which key value.

``anomalia fit DATA --key host --out MODELS/`` writes it; ``anomalia score MODELS/ DATA`` routes each row to
its key's model. The index is JSON (no pickle), written last and atomically, so a folder with an index is
complete.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._core import BundleError
from ..model import Model

#: The index file of a folder of per-key models.
INDEX = "anomalia-index.json"
INDEX_FORMAT = 1


def folder_name(key: str, value: Any) -> str:
    """The folder of one key value: ``key=value`` with characters outside ``[A-Za-z0-9._-]`` replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(value))
    return f"{key}={safe}"


def is_model_index(path: str | Path) -> bool:
    """Whether ``path`` is a folder of per-key models (it holds ``anomalia-index.json``)."""
    return (Path(path) / INDEX).is_file()


def write_index(folder: str | Path, key: str, folders: Mapping[Any, str], extra: dict[str, Any] | None = None) -> Path:
    """Write the index of ``folder`` (key column, key value -> model folder) atomically; returns its path."""
    path = Path(folder) / INDEX
    body = {
        "format": INDEX_FORMAT,
        "key": key,
        "models": [{"value": v, "folder": f} for v, f in folders.items()],
        **(extra or {}),
    }
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(body, indent=2, default=str))
    os.replace(tmp, path)
    return path


@dataclass
class ModelIndex:
    """Per-key models loaded from an index folder: ``models[value]`` serves the rows whose ``key`` is value."""

    key: str
    models: dict[Any, Model]
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | Path) -> ModelIndex:
        folder = Path(folder)
        try:
            body = json.loads((folder / INDEX).read_text())
            key = str(body["key"])
            entries = [(e["value"], str(e["folder"])) for e in body["models"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{folder / INDEX} is not a readable model index ({exc}); fit again with --key") from None
        if body.get("format") != INDEX_FORMAT:
            raise BundleError(f"{folder / INDEX} has index format {body.get('format')!r}; this anomalia reads 1")
        if not entries:
            raise BundleError(f"{folder / INDEX} lists no model")
        models = {value: Model.load(folder / sub) for value, sub in entries}
        return cls(key, models, folder, {k: v for k, v in body.items() if k not in ("models",)})

    def any_model(self) -> Model:
        return next(iter(self.models.values()))

    @property
    def input_kind(self) -> str:
        return self.any_model().input_kind

    def input_columns(self) -> list[str]:
        """Every column some key's model reads (the key column is read besides)."""
        cols: dict[str, None] = {}
        for m in self.models.values():
            cols.update(dict.fromkeys(c for c in m.input_columns if c != self.key))
            time_column = getattr(m.detector, "time_column", None)
            if m.input_kind == "series" and time_column:
                cols[time_column] = None
        return list(cols)

    def lookup(self, value: Any) -> Model | None:
        """The model of key ``value`` (a string from a file matches an integer key and back)."""
        m = self.models.get(value)
        if m is None:
            m = self.models.get(str(value)) or next((v for k, v in self.models.items() if str(k) == str(value)), None)
        return m
