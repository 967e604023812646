"""A fast, deterministic fake embedder: hashed bag of words, no model, no torch."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .base import InputType, Vectors, normalize

__all__ = ["HashingEmbedder"]

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Embeds a text as its hashed bag of lower-cased words (the "hashing trick").

    Texts that share words get similar vectors, so dense search behaves plausibly in tests,
    and the same text gives the same vector in every process (blake2b, not ``hash()``).

    Args:
        dimensions: Vector size.
        name: The name recorded with a corpus; ``hashing:<dimensions>`` when ``None``.

    Attributes:
        calls: How many texts were embedded per call, for tests that count work.
    """

    def __init__(self, dimensions: int = 256, *, name: str | None = None) -> None:
        self.dimensions = dimensions
        self._name = name or f"hashing:{dimensions}"
        self.calls: list[int] = []

    @property
    def name(self) -> str:
        return self._name

    def _bucket(self, word: str) -> tuple[int, float]:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimensions, 1.0 if value >> 63 else -1.0

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        """Unit vectors (a text without words maps to a fixed unit vector)."""
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                index, sign = self._bucket(word)
                out[row, index] += sign
        # No words (or words whose signs cancel): a fixed unit vector, never a zero one,
        # which cosine distance cannot handle.
        out[~out.any(axis=1), 0] = 1.0
        return normalize(out)
