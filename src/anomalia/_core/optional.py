"""Optional dependencies: import them where used, with an error that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the extra that installs it.

    >>> require("json", "core", purpose="reading manifests").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{purpose} needs the optional package {module.split('.')[0]!r}: pip install 'anomalia[{extra}]'"
        ) from None
