"""Severity from the p-value, and label matching (silences, routing, actions)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .config import SEVERITIES

__all__ = ["at_least", "matches", "severity_of"]

_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # critical 0, major 1, minor 2


def severity_of(p_value: float | None, cuts: tuple[float, float]) -> str:
    """``critical`` for p <= cuts[0], ``major`` for p <= cuts[1], else ``minor`` (no p-value: minor)."""
    if p_value is None or p_value != p_value:
        return "minor"
    if p_value <= cuts[0]:
        return "critical"
    return "major" if p_value <= cuts[1] else "minor"


def at_least(severity: str, minimum: str) -> bool:
    """Whether ``severity`` is ``minimum`` or more severe."""
    return _RANK.get(severity, 2) <= _RANK.get(minimum, 2)


def worst(a: str, b: str) -> str:
    return a if _RANK.get(a, 2) <= _RANK.get(b, 2) else b


def matches(labels: Mapping[str, str | None], matchers: Mapping[str, str] | tuple[tuple[str, str], ...]) -> bool:
    """Every matcher holds: ``value`` equal, ``~regex`` a full match, ``!value`` not equal."""
    items = matchers.items() if isinstance(matchers, Mapping) else matchers
    for key, want in items:
        have = labels.get(key)
        have_s = "" if have is None else str(have)
        if want.startswith("~"):
            if not re.fullmatch(want[1:], have_s):
                return False
        elif want.startswith("!"):
            if have_s == want[1:]:
                return False
        elif have_s != want:
            return False
    return True
