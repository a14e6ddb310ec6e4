"""Local random generators: library code never seeds global state."""

from __future__ import annotations

import numbers

import numpy as np

from .exceptions import ParameterError

RandomState = int | np.random.Generator | None


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """Turn ``random_state`` (None, an int seed or a Generator) into a ``numpy.random.Generator``."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        if random_state is not None and int(random_state) < 0:
            raise ParameterError(f"random_state must be a non-negative int, None or a Generator; got {random_state}")
        return np.random.default_rng(None if random_state is None else int(random_state))
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise ParameterError(
        f"random_state must be None, a non-negative int or a numpy.random.Generator; got {type(random_state).__name__}"
    )


def child_seed(rng: np.random.Generator) -> int:
    """Draw a seed for a child generator (torch, scikit-learn) from ``rng``."""
    return int(rng.integers(0, 2**31 - 1))
