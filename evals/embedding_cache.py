"""An on-disk cache of embeddings for repeated eval runs.

Embedding SciFact's 5,183 abstracts takes about four minutes on two cores; the retrieval
evals only need them once. The cache wraps any :class:`~maestro_lite.embeddings.Embedder`,
keeps its name (so corpora record the real model) and stores one vector per sha256 of the
text, per model. Throughput benchmarks must not use it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maestro_lite.embeddings import Embedder, InputType, Vectors

__all__ = ["CachedEmbedder"]


class CachedEmbedder:
    """Embeds through ``inner`` only the texts it has not seen before.

    Args:
        inner: The embedder whose vectors are cached.
        directory: Where to keep them; a sub-folder per model name is used.
    """

    def __init__(self, inner: Embedder, directory: Path) -> None:
        self.inner = inner
        self.directory = directory / re.sub(r"[^A-Za-z0-9._-]+", "_", inner.name)
        self.hits = 0
        self.misses = 0
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._vectors: Vectors | None = None
        if (self.directory / "keys.json").exists():
            self._keys = json.loads((self.directory / "keys.json").read_text())
            self._vectors = np.load(self.directory / "vectors.npy")
            self._index = {key: i for i, key in enumerate(self._keys)}

    @property
    def name(self) -> str:
        return self.inner.name

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        if not texts:
            return await self.inner.embed([], input_type=input_type)
        keys = [hashlib.sha256(f"{input_type}\0{text}".encode()).hexdigest() for text in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._index))
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            fresh = await self.inner.embed([by_key[k] for k in missing], input_type=input_type)
            self._add(missing, fresh)
        assert self._vectors is not None
        rows: Vectors = self._vectors[[self._index[k] for k in keys]]
        return rows

    def _add(self, keys: list[str], vectors: Vectors) -> None:
        start = len(self._keys)
        self._keys.extend(keys)
        self._index.update((k, start + i) for i, k in enumerate(keys))
        self._vectors = vectors if self._vectors is None else np.vstack([self._vectors, vectors])
        self.directory.mkdir(parents=True, exist_ok=True)
        np.save(self.directory / "vectors.npy", self._vectors)
        (self.directory / "keys.json").write_text(json.dumps(self._keys))
