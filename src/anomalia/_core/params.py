"""Argument rules as a table, checked when ``fit`` runs (scikit-learn's habit, without its private API)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ParameterError


@dataclass(frozen=True)
class Rule:
    """One allowed form of an argument: ``check(value)`` is true when it fits; ``text`` says what it is."""

    check: Callable[[Any], bool]
    text: str


def interval(low: float | None, high: float | None, *, closed: str = "both", integer: bool = False) -> Rule:
    """Numbers in [low, high] (``closed`` in both/left/right/neither); ints only when ``integer``."""
    kind = numbers.Integral if integer else numbers.Real

    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, kind):
            return False
        if low is not None and (v < low or (v == low and closed in ("right", "neither"))):
            return False
        return not (high is not None and (v > high or (v == high and closed in ("left", "neither"))))

    lb = "[" if closed in ("both", "left") else "("
    rb = "]" if closed in ("both", "right") else ")"
    name = "an int" if integer else "a number"
    return Rule(check, f"{name} in {lb}{'-inf' if low is None else low}, {'inf' if high is None else high}{rb}")


def options(*values: Any) -> Rule:
    return Rule(lambda v: isinstance(v, str | bool | type(None)) and v in values, f"one of {list(values)}")


def int_tuple(min_len: int = 1) -> Rule:
    def check(v: Any) -> bool:
        return (
            isinstance(v, tuple | list)
            and len(v) >= min_len
            and all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in v)
        )

    return Rule(check, f"a tuple of at least {min_len} positive ints")


NONE = Rule(lambda v: v is None, "None")


def instance_of(*types: type, text: str) -> Rule:
    return Rule(lambda v: isinstance(v, types), text)


def check_params(owner: str, params: Mapping[str, Any], rules: Mapping[str, list[Rule]]) -> None:
    """Raise :class:`ParameterError` for the first argument that fits none of its rules."""
    for name, allowed in rules.items():
        value = params[name]
        if not any(rule.check(value) for rule in allowed):
            expected = " or ".join(rule.text for rule in allowed)
            raise ParameterError(f"{owner}({name}=...) must be {expected}; got {value!r}")
