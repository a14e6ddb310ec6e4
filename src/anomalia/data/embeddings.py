"""Packaged sentence embeddings as a featuriser (extra ``anomalia[embeddings]``): text -> fixed vectors.

Only a model whose weights ship inside the PyPI wheel itself, under a clear licence, qualifies: nothing is
downloaded, ever. The one found is WordLlama's ``l2_supercat`` (package ``wordllama``, MIT licence): a
static token-embedding table (256 dimensions, a safetensors file in the wheel) and its tokenizer file,
pooled by the package into one vector per text. This module loads both from the installed package's own
files, never through the package's loader (which looks up a cache and a hub first).

Measured on SMS spam (benchmarks/RESULTS.md, "Text"): the detectors trained on the user's own text
(``text``, ``text-lm``) separate far better; this featuriser is for users who want a general-purpose
vector of their texts (e.g. as one part of a multimodal record, or for their own table detector).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._core.optional import require

#: The model inside the wheel: (weights file, tensor, tokenizer file), relative to the package folder.
WORDLLAMA_FILES = (
    "weights/l2_supercat_256.safetensors",
    "embedding.weight",
    "tokenizers/l2_supercat_tokenizer_config.json",
)


@dataclass
class PackagedEmbeddings:
    """WordLlama's packaged embeddings: ``transform(texts)`` -> (n, 256) float32 unit vectors.

    The model is read from the installed ``wordllama`` package's own files on first use; no network.
    ``info()`` names the package, its version, the files and the licence (for a model's manifest).
    """

    _model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            wordllama = require("wordllama", "embeddings", purpose="packaged text embeddings")
            from safetensors import safe_open
            from wordllama.inference import WordLlamaInference

            root = Path(wordllama.__file__).parent
            weights, key, tokenizer = WORDLLAMA_FILES
            with safe_open(str(root / weights), framework="np", device="cpu") as fh:
                table = fh.get_tensor(key)
            tok = wordllama.WordLlama.load_tokenizer(root / tokenizer)  # a local file: no fallback lookup
            self._model = WordLlamaInference(table, tok)
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().embedding.shape[1])

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 vector per text (the zero vector for a text without tokens)."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):  # a text without tokens: 0 / 0
            out = np.asarray(self._load().embed(texts, norm=True), dtype=np.float32)
        return np.nan_to_num(out, nan=0.0)

    def info(self) -> dict[str, Any]:
        from importlib.metadata import metadata

        self._load()
        meta = metadata("wordllama")
        return {
            "kind": "packaged-embeddings",
            "package": "wordllama",
            "version": meta["Version"],
            "licence": (meta["License"] or "").splitlines()[0] if meta["License"] else None,
            "files": [WORDLLAMA_FILES[0], WORDLLAMA_FILES[2]],
            "dim": self.dim,
        }
