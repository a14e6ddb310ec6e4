"""Text: readers (log files one line per record, a text column of a CSV / Parquet file) and the featurisers
of the text detectors, all trained on the user's own normal text (nothing is downloaded).

- :class:`HashedTfidf`: character n-gram TF-IDF through the hashing trick. Hashing keeps n-grams that were
  never seen in training (an exact vocabulary would silently drop exactly the anomalous ones) and needs no
  vocabulary in the model folder: its parameters go in the manifest, the idf weights are one array.
- :func:`byte_windows`: texts as UTF-8 bytes cut into overlapping fixed-length windows for a byte-level
  language model, with a mask of the positions each window predicts and the text each window belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputError
from .readers import read_table

#: Files read as one record per line when no text column is given.
LINE_SUFFIXES = (".log", ".txt")
#: Token ids of the byte models: 0-255 the bytes, then a boundary (start / end of a text) and padding.
BOUNDARY, PAD = 256, 257
#: Vocabulary of the byte models' inputs (bytes, boundary, padding) and outputs (bytes, boundary).
N_INPUT_TOKENS, N_OUTPUT_TOKENS = 258, 257


def is_line_file(path: str | Path) -> bool:
    """A log or plain-text file (``.log``, ``.txt``, also compressed ``.log.gz``): one record per line."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2") and len(suffixes) > 1:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in LINE_SUFFIXES


def read_lines(path: str | Path) -> np.ndarray:
    """Every non-empty line of a text or log file (UTF-8; undecodable bytes replaced), as an object array.

    Trailing newlines (``\\n``, ``\\r\\n``) are removed; empty lines are not records and are skipped.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise InputError(f"{p} is a folder; give a log or text file (one record per line)")
    opener: Any = open
    if p.suffix.lower() == ".gz":
        import gzip

        opener = gzip.open
    elif p.suffix.lower() == ".bz2":
        import bz2

        opener = bz2.open
    with opener(p, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        lines = [line.rstrip("\r\n") for line in fh]
    out = np.asarray([line for line in lines if line.strip()], dtype=object)
    if out.size == 0:
        raise InputError(f"{p} has no non-empty lines to read as texts")
    return out


def read_texts(path: str | Path, column: str | None = None) -> np.ndarray:
    """The texts of a file: a log / text file one per line, or ``column`` of a CSV, TSV or Parquet file.

    Missing values in the column become ``""``.
    """
    if column is None:
        if is_line_file(path):
            return read_lines(path)
        raise InputError(
            f"{path} is a table; say which column holds the text (--text-column COLUMN, or column=...). "
            f"Log files ({', '.join(LINE_SUFFIXES)}) are read one record per line"
        )
    table = read_table(path, columns=[column])
    values = table.column(column).to_pylist()
    return np.asarray(["" if v is None else str(v) for v in values], dtype=object)


# ---------------------------------------------------------------------------------------------- TF-IDF
@dataclass
class HashedTfidf:
    """Hashed character n-gram TF-IDF, fitted on normal text.

    Parameters
    ----------
    ngram_range : (int, int)
        Lengths of the character n-grams (inside word boundaries, scikit-learn's ``char_wb``).
    n_features : int
        Hash buckets (a power of two); collisions are rare at the default 2**18.
    lowercase : bool
        Lower-case before extracting n-grams.
    sublinear_tf : bool
        ``1 + log(tf)`` instead of raw counts.

    Learned: ``idf_`` (float32 array of ``n_features``; buckets never seen in training get the largest idf,
    so new n-grams weigh most).
    """

    ngram_range: tuple[int, int] = (1, 4)
    n_features: int = 2**18
    lowercase: bool = True
    sublinear_tf: bool = True
    idf_: np.ndarray | None = None

    def _hasher(self) -> Any:
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(self.ngram_range),
            n_features=int(self.n_features),
            lowercase=self.lowercase,
            alternate_sign=False,
            norm=None,
            dtype=np.float32,
        )

    def _counts(self, texts: Sequence[str]) -> Any:
        X = self._hasher().transform(texts)
        if self.sublinear_tf:
            X.data = 1.0 + np.log(X.data)
        return X

    def fit(self, texts: Sequence[str]) -> HashedTfidf:
        """Learn the idf weights from normal ``texts`` (smoothed: ``log((1 + n) / (1 + df)) + 1``)."""
        X = self._hasher().transform(texts)
        df = np.bincount(X.indices, minlength=int(self.n_features)).astype(np.float64)
        n = X.shape[0]
        self.idf_ = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        """L2-normalised TF-IDF rows (scipy CSR, float32); an empty text gives a zero row."""
        if self.idf_ is None:
            raise InputError("the TF-IDF featuriser is not fitted; call fit(texts) first")
        X = self._counts(texts)
        X.data *= self.idf_[X.indices]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        X.data /= np.repeat(norms, np.diff(X.indptr)).astype(np.float32)
        return X

    def ngrams(self, text: str) -> list[str]:
        """The n-grams of ``text`` as the featuriser sees them (for explanations)."""
        return self._hasher().build_analyzer()(text)

    def bucket(self, ngrams: Sequence[str]) -> np.ndarray:
        """The hash bucket of each n-gram."""
        from sklearn.feature_extraction.text import HashingVectorizer

        h = HashingVectorizer(
            analyzer=lambda doc: doc, n_features=int(self.n_features), alternate_sign=False, norm=None
        )
        X = h.transform([[g] for g in ngrams])
        return X.indices.astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """The parameters (the manifest's part; ``idf_`` goes to the weights file)."""
        return {
            "kind": "hashed-char-tfidf",
            "analyzer": "char_wb",
            "ngram_range": list(self.ngram_range),
            "n_features": int(self.n_features),
            "lowercase": bool(self.lowercase),
            "sublinear_tf": bool(self.sublinear_tf),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], idf: np.ndarray) -> HashedTfidf:
        return cls(
            tuple(int(v) for v in d["ngram_range"]),  # type: ignore[arg-type]
            int(d["n_features"]),
            bool(d["lowercase"]),
            bool(d["sublinear_tf"]),
            np.asarray(idf, dtype=np.float32),
        )


# ---------------------------------------------------------------------------------------------- bytes
def encode_bytes(texts: Sequence[str], max_bytes: int | None = None) -> list[bytes]:
    """UTF-8 bytes of each text (cut to ``max_bytes`` when given)."""
    out = [t.encode("utf-8", errors="replace") for t in texts]
    return out if max_bytes is None else [b[:max_bytes] for b in out]


def text_tokens(texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's bytes followed by the boundary token, int64 (the pieces of :func:`token_stream`)."""
    end = np.array([BOUNDARY], dtype=np.int64)
    return [np.r_[np.frombuffer(b, dtype=np.uint8).astype(np.int64), end] for b in encode_bytes(texts)]


def token_stream(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The pieces of :func:`text_tokens` run together in the order given, after one boundary token."""
    return np.concatenate([np.array([BOUNDARY], dtype=np.int64), *parts])


def byte_stream(texts: Sequence[str]) -> np.ndarray:
    """All texts as one token stream, each followed by the boundary token (a training corpus), int64."""
    return token_stream(text_tokens(texts))


def stream_windows(stream: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping windows of ``length + 1`` tokens of a stream (inputs and next-token targets), int64."""
    n = max(1, (stream.size - 1) // length)
    if stream.size < length + 1:
        stream = np.r_[stream, np.full(length + 1 - stream.size, PAD, dtype=np.int64)]
    idx = np.arange(n)[:, None] * length + np.arange(length + 1)[None, :]
    return np.ascontiguousarray(stream[idx])


@dataclass(frozen=True)
class ByteWindows:
    """Texts as windows for scoring: ``tokens`` (w, length + 1) int64 (boundary, bytes, boundary, padding),
    ``counted`` (w, length) bool (the targets a window scores; each byte is scored once, with at least
    half a window of context after the first), ``text`` (w,) which text a window belongs to, ``start`` (w,)
    where in its text the window starts (target ``j`` of a window is byte ``start + j``; the byte after the
    last is the text's end), and for each text its bytes."""

    tokens: np.ndarray
    counted: np.ndarray
    text: np.ndarray
    start: np.ndarray
    data: list[bytes]


def byte_windows(texts: Sequence[str], length: int) -> ByteWindows:
    """Windows of ``length + 1`` tokens covering every text (see :class:`ByteWindows`)."""
    half = max(1, length // 2)
    data = encode_bytes(texts)
    tokens, counted, owner, starts = [], [], [], []
    for i, b in enumerate(data):
        seq = np.r_[BOUNDARY, np.frombuffer(b, dtype=np.uint8).astype(np.int64), BOUNDARY]
        n_targets = seq.size - 1
        start = 0
        while True:
            piece = seq[start : start + length + 1]
            row = np.full(length + 1, PAD, dtype=np.int64)
            row[: piece.size] = piece
            mask = np.zeros(length, dtype=bool)
            first = 0 if start == 0 else length - half
            mask[first : piece.size - 1] = True
            tokens.append(row)
            counted.append(mask)
            owner.append(i)
            starts.append(start)
            if start + length >= n_targets:
                break
            start += half
    return ByteWindows(
        np.stack(tokens), np.stack(counted), np.asarray(owner, dtype=np.int64), np.asarray(starts, np.int64), data
    )


_SPAN = re.compile(rb"\S+")


def byte_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte offsets of the whitespace-separated spans of ``data``."""
    return [(m.start(), m.end()) for m in _SPAN.finditer(data)]
