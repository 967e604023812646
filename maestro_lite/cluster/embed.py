"""``RayEmbedder``: the settings' embedder, run on the nodes of a Ray cluster.

Ingestion spends nearly all its time embedding (see BENCHMARKS.md). A corpus opened with a
``RayEmbedder`` ingests as always, in this process (reading, parsing, idempotent writes,
per-file failures, progress), but each batch of chunks it embeds is cut into slices that
Ray tasks embed on the nodes, a bounded number in flight (``ray.wait``), and put back in
order. Each node's worker process loads the model once and keeps it. The embedder's name is
the wrapped one's, so the corpus is the same corpus, whichever way it was ingested.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..embeddings import embedder_from_settings
from ..embeddings.base import Embedder, InputType, Vectors
from ..settings import Settings
from ._ray import bounded, cluster_cpus, connect, remote, run_coroutine

__all__ = ["RayEmbedder", "embed_on_node"]

_EMBEDDERS: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def _embedder(settings: Settings) -> Embedder:
    """This worker process's embedder for ``settings`` (loaded once, kept)."""
    with _LOCK:
        embedder = _EMBEDDERS.get(settings.embedder)
        if embedder is None:
            embedder = _EMBEDDERS[settings.embedder] = embedder_from_settings(settings)
        return embedder


def embed_on_node(settings: Settings, texts: list[str], input_type: InputType) -> Vectors:
    """Vectors for ``texts`` with the settings' embedder (the body of a Ray task)."""
    embedder = _embedder(settings)
    vectors: Vectors = run_coroutine(embedder.embed(texts, input_type=input_type))
    return vectors


class RayEmbedder:
    """The embedder ``settings.embedder`` names, run on the Ray cluster at ``address``.

    Args:
        address: The head's ``HOST:PORT``, or ``auto``.
        settings: Names the embedder each node loads.
        slice_size: Texts per task.
        max_in_flight: Tasks submitted at once (back-pressure); twice the cluster's CPUs
            keeps every node busy while results travel back.

    Raises:
        UserError: Ray is not installed or the cluster cannot be reached.
    """

    def __init__(
        self,
        address: str,
        *,
        settings: Settings,
        slice_size: int = 32,
        max_in_flight: int | None = None,
    ) -> None:
        if slice_size < 1:
            raise ValueError("slice_size must be at least 1")
        connect(address)
        self.settings = settings
        self.slice_size = slice_size
        self.max_in_flight = max_in_flight or max(2, 2 * cluster_cpus())
        self._name = embedder_from_settings(settings).name
        self._task: Any = remote(embed_on_node)

    @property
    def name(self) -> str:
        return self._name

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        starts = range(0, len(texts), self.slice_size)
        slices = {start: list(texts[start : start + self.slice_size]) for start in starts}
        out: dict[int, Vectors] = {}
        async for start, result in bounded(
            lambda start: self._task.remote(self.settings, slices[start], input_type),
            slices,
            max_in_flight=self.max_in_flight,
        ):
            if isinstance(result, BaseException):
                raise result
            out[start] = result
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate([out[start] for start in sorted(out)]).astype(np.float32)
