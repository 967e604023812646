"""The embedder interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Embedder", "InputType", "Vectors", "normalize"]

Vectors: TypeAlias = NDArray[np.float32]
"""A ``(n, dimensions)`` float32 array, one row per text."""

InputType = Literal["document", "query"]
"""What is being embedded; asymmetric models embed queries and passages differently."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors."""

    @property
    def name(self) -> str:
        """A stable identifier such as ``local:all-MiniLM-L6-v2``; recorded with a corpus."""
        ...

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        """Vectors for ``texts``, unit length, in order. Batching is the embedder's job."""
        ...


def normalize(vectors: NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero)."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: Vectors = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result
