"""Text by its nearest normal neighbours: hashed character n-gram TF-IDF, cosine distance to the closest
normal texts. The score works on the full hashed vector, never on a truncated projection of it: a density
model on truncated-SVD coordinates throws away exactly the n-grams that make a text anomalous."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import numpy as np

from .._core.params import Rule, interval, options
from ..data.text import HashedTfidf
from .registry import register
from .text_base import TEXT_RULES, Spans, TextBase, shares_of

#: Query texts per block of the similarity product (block x memory floats at once).
QUERY_BLOCK = 2048


def _ngram_range_rule() -> Rule:
    def check(v: Any) -> bool:
        return (
            isinstance(v, tuple | list)
            and len(v) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in v)
            and v[0] <= v[1] <= 8
        )

    return Rule(check, "(low, high) n-gram lengths with 1 <= low <= high <= 8")


@register("text")
class TextDetector(TextBase):
    """Text detector: hashed char n-gram TF-IDF fitted on normal text, score = cosine distance to the
    ``n_neighbors`` nearest normal texts (mean). Explanations: the words whose n-grams carry the distance.

    Parameters
    ----------
    n_neighbors : int
        Nearest normal texts averaged (3: fixed before any measurement, a common choice for kNN detectors).
    ngram_range : (int, int)
        Character n-gram lengths, inside word boundaries.
    n_features : int
        Hash buckets of the n-grams.
    lowercase : bool
        Lower-case the text first.
    max_memory : int
        Normal training texts kept as neighbours at most (a random sample beyond that).
    text_column, threshold, calibration_fraction, keep_rows, random_state
        See :class:`~anomalia.detectors.text_base.TextBase` and :class:`~anomalia.BaseDetector`.

    The score of text ``a`` against a neighbour ``b`` is ``1 - a . b`` = ``sum_j a_j (a_j - b_j)`` over the
    n-grams ``j`` of ``a`` (unit vectors): that sum splits the score exactly over the text's own n-grams,
    and each word gets the parts of the n-grams it holds.
    """

    parameter_rules: ClassVar[dict[str, list[Rule]]] = {
        **TEXT_RULES,
        "n_neighbors": [interval(1, None, integer=True)],
        "ngram_range": [_ngram_range_rule()],
        "n_features": [interval(2**8, 2**24, integer=True)],
        "lowercase": [options(True, False)],
        "max_memory": [interval(1, None, integer=True)],
    }
    test_params: ClassVar[dict[str, Any]] = {"n_features": 2**12}

    n_neighbors: int = 3
    ngram_range: tuple[int, int] = (1, 4)
    n_features: int = 2**18
    lowercase: bool = True
    max_memory: int = 20000

    # ------------------------------------------------------------------ fitting
    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        self.featuriser_ = HashedTfidf(tuple(self.ngram_range), int(self.n_features), self.lowercase).fit(X)  # type: ignore[arg-type]
        self.memory_ = self._memory(X, rng)

    def _memory(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        if X.shape[0] > self.max_memory:
            X = X[np.sort(rng.choice(X.shape[0], self.max_memory, replace=False))]
        M = self.featuriser_.transform(X).tocsr()
        M.sort_indices()
        return M

    def _update(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        """New normal texts join the neighbours (the idf weights stay those of the first fit)."""
        import scipy.sparse as sp

        M = sp.vstack([self.memory_, self.featuriser_.transform(X)]).tocsr()
        if M.shape[0] > self.max_memory:
            M = M[np.sort(rng.choice(M.shape[0], self.max_memory, replace=False))]
        M.sort_indices()
        self.memory_ = M

    # ------------------------------------------------------------------ scoring
    def _neighbours(self, Q: Any) -> tuple[np.ndarray, np.ndarray]:
        """Indices (n, k) of the nearest memory rows of each query row and the mean similarity to them."""
        k = min(int(self.n_neighbors), self.memory_.shape[0])
        MT = self.memory_.T.tocsr()
        idx = np.empty((Q.shape[0], k), dtype=np.int64)
        sim = np.empty(Q.shape[0], dtype=np.float64)
        for start in range(0, Q.shape[0], QUERY_BLOCK):
            S = (Q[start : start + QUERY_BLOCK] @ MT).toarray()
            top = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < S.shape[1] else np.tile(np.arange(k), (len(S), 1))
            idx[start : start + len(S)] = top
            sim[start : start + len(S)] = np.take_along_axis(S, top, axis=1).mean(axis=1, dtype=np.float64)
        return idx, sim

    def _score(self, X: np.ndarray) -> np.ndarray:
        _, sim = self._neighbours(self.featuriser_.transform(X))
        return np.clip(1.0 - sim, 0.0, 2.0)

    def _spans(self, texts: np.ndarray) -> list[Spans]:
        Q = self.featuriser_.transform(texts).tocsr()
        idx, _ = self._neighbours(Q)
        out = []
        for i, text in enumerate(texts):
            row = Q[i]
            a = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
            b = np.asarray(self.memory_[idx[i]].mean(axis=0), dtype=np.float64).ravel()
            part = {j: v * (v - b[j]) for j, v in a.items()}  # sums to the score (1 - mean similarity)
            out.append(self._word_parts(str(text), part))
        return out

    def _word_parts(self, text: str, part: dict[int, float]) -> Spans:
        """Each word's share: the parts of its n-grams, an n-gram's part split over its occurrences."""
        f = self.featuriser_
        words = text.split()
        grams = [f.ngrams(w) for w in words]
        if not any(grams):
            return []
        every = Counter(g for gs in grams for g in gs)
        names = list(every)
        bucket = dict(zip(names, f.bucket(names).tolist(), strict=True))
        per_bucket = Counter(bucket.values())  # distinct n-grams sharing a bucket (hash collisions) split it
        parts: dict[str, float] = {}
        for w, gs in zip(words, grams, strict=True):
            v = sum(part.get(bucket[g], 0.0) / (every[g] * per_bucket[bucket[g]]) for g in gs)
            parts[w] = parts.get(w, 0.0) + v
        return shares_of(parts)

    # ------------------------------------------------------------------ state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"]["featuriser"] = self.featuriser_.to_dict()
        M = self.memory_
        arrays.update(
            {
                "featuriser.idf": self.featuriser_.idf_,
                "memory.data": M.data.astype(np.float32),
                "memory.indices": M.indices.astype(np.int64),
                "memory.indptr": M.indptr.astype(np.int64),
            }
        )
        meta["state"]["memory_shape"] = [int(M.shape[0]), int(M.shape[1])]
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        import scipy.sparse as sp

        super()._set_state(meta, arrays)
        state = meta["state"]
        self.featuriser_ = HashedTfidf.from_dict(state["featuriser"], arrays["featuriser.idf"])
        shape = tuple(int(v) for v in state["memory_shape"])
        self.memory_ = sp.csr_matrix(
            (arrays["memory.data"].copy(), arrays["memory.indices"].copy(), arrays["memory.indptr"].copy()), shape=shape
        )
