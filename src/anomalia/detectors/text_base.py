"""What the text detectors share: text input (a list / array / Series of strings, or a DataFrame's text
column), calibration on held-out normal texts, explanations as the spans (words, n-grams) of a text that
carry its score, and the rows the model layer writes.

A text detector's ``X`` is one string per record. Its explanation is not a fixed vector of features but, per
text, a list of ``(span, share)`` pairs, largest first: the share of the text's score that each span carries
(shares are non-negative and sum to at most 1; the rest belongs to whitespace and boundaries).
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from typing import Any, ClassVar

import numpy as np

from .._core import Schema, check_is_fitted, check_schema
from .._core.params import instance_of, options
from .._core.texts import as_texts, check_text_fit_input
from ..results import Contributions, ScoredRows
from .base import BaseDetector

TEXT_RULES = {"text_column": [instance_of(str, text="a column name"), options(None)]}

#: One explanation: (span, share) pairs, largest share first.
Spans = list[tuple[str, float]]

_WORDS = (
    "user", "login", "ok", "session", "opened", "closed", "request", "served", "from", "cache", "db", "query",
    "took", "ms", "worker", "started", "job", "finished", "retry", "scheduled", "disk", "usage", "normal", "backup",
    "completed", "heartbeat", "received", "config", "reloaded",
)


class TextBase(BaseDetector):
    """Base of the text detectors (see the module docstring).

    Parameters
    ----------
    text_column : str, optional
        The column of a DataFrame ``X`` that holds the text (not needed for a one-column frame or a list).
    """

    input_kind: ClassVar[str] = "text"
    input_ndim: ClassVar[int] = 1

    _: KW_ONLY
    text_column: str | None = None

    @classmethod
    def _contract_data(cls, rng: np.random.Generator, n: int) -> np.ndarray:
        """Short log-like lines made of a small vocabulary and numbers."""
        out = []
        for _ in range(n):
            words = rng.choice(_WORDS, size=int(rng.integers(3, 8)))
            out.append(f"{' '.join(words)} id={int(rng.integers(0, 1000))}")
        return np.asarray(out, dtype=object)

    # ------------------------------------------------------------------ hooks
    def _spans(self, texts: np.ndarray) -> list[Spans]:
        """Every span of each text with its share of the text's score (see the module docstring)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ input and fitting
    def _validate(self, X: Any, *, fitting: bool, finite: bool = True) -> tuple[np.ndarray, Schema]:
        if fitting:
            return check_text_fit_input(X, column=self.text_column)
        texts, schema = as_texts(X, column=self.text_column)
        check_schema(schema, self.schema_)
        return texts, schema

    def _learn_normal(self, rows: np.ndarray) -> None:
        """Texts have no per-feature values to compare against: explanations are spans (:meth:`explain`)."""

    # ------------------------------------------------------------------ explanations
    def explain(self, X: Any, *, top_k: int | None = None) -> list[Spans]:
        """Per text, its spans with their shares of the score, largest first (the ``top_k`` largest)."""
        check_is_fitted(self)
        texts, _ = self._validate(X, fitting=False)
        spans = self._spans(texts)
        return spans if top_k is None else [s[:top_k] for s in spans]

    def scored_rows(
        self,
        X: Any,
        *,
        explain: str = "flagged",
        top_k: int = 3,
        row_offset: int = 0,
        name: str = "",
        version: str = "",
    ) -> ScoredRows:
        """Scores, p-values, decisions and (for ``explain`` = "flagged" or "all" rows) the ``top_k`` spans of
        each text as its contributions: what :meth:`anomalia.Model.score` returns for text."""
        check_is_fitted(self)
        texts, _ = self._validate(X, fitting=False)
        scores = self._score(texts)
        flags = self.fitted_threshold().predict(scores)
        rows = np.flatnonzero(flags) if explain == "flagged" else np.arange(scores.size) if explain == "all" else []
        rows = np.asarray(rows, dtype=np.int64)
        spans = self._spans(texts[rows]) if rows.size else []
        names = sorted({s for row in spans for s, _ in row[:top_k]})
        where = {s: i for i, s in enumerate(names)}
        contributions = Contributions.none(scores.size, names, top_k)
        for r, row in zip(rows, spans, strict=True):
            for j, (s, share) in enumerate(row[:top_k]):
                contributions.index[r, j], contributions.share[r, j] = where[s], share
        return ScoredRows(
            score=scores,
            p_value=self.calibrator_.p_values(scores),
            is_anomaly=flags,
            row=np.arange(row_offset, row_offset + scores.size, dtype=np.int64),
            contributions=contributions,
            model_name=name,
            model_version=version,
        )

    # ------------------------------------------------------------------ state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {
            "schema": self.schema_.to_dict(),
            "training": {"seed": self.seed_, "n_train_rows": self.n_train_rows_, "n_updates": self.n_updates_},
            "calibration": self.calibrator_.to_dict(),
            "threshold": None if self.threshold_ is None else self.threshold_.to_dict(),
            "state": {},
        }
        arrays: dict[str, np.ndarray] = {}
        if self.keep_rows and hasattr(self, "replay_"):
            for key, texts in (("replay", self.replay_), ("calibration_rows", self.calibration_rows_)):
                arrays[f"text.{key}"], arrays[f"text.{key}_offsets"] = pack_texts(texts)
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        if "text.replay" in arrays:
            self.replay_ = unpack_texts(arrays["text.replay"], arrays["text.replay_offsets"])
            cal, ends = arrays["text.calibration_rows"], arrays["text.calibration_rows_offsets"]
            self.calibration_rows_ = unpack_texts(cal, ends)


def pack_texts(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texts as one uint8 array of their UTF-8 bytes and the int64 offsets where each ends (for safetensors)."""
    data = [t.encode("utf-8") for t in texts]
    ends = np.cumsum([len(b) for b in data], dtype=np.int64)
    return np.frombuffer(b"".join(data) or b"\0", dtype=np.uint8).copy(), ends


def unpack_texts(data: np.ndarray, ends: np.ndarray) -> np.ndarray:
    raw = data.tobytes()
    starts = np.r_[0, ends[:-1]]
    return np.asarray([raw[s:e].decode("utf-8") for s, e in zip(starts, ends, strict=True)], dtype=object)


def shares_of(parts: dict[str, float]) -> Spans:
    """(span, share) pairs from non-negative span parts, largest first; shares of the positive total."""
    total = sum(float(v) for v in parts.values() if v > 0)
    if total <= 0:
        return [(s, 0.0) for s in parts]
    return sorted(((s, max(float(v), 0.0) / total) for s, v in parts.items()), key=lambda p: -p[1])
