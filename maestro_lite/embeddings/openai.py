"""Embeddings from an OpenAI-compatible ``/embeddings`` endpoint.

Its ``openai`` errors are mapped by :func:`maestro_lite.models.openai.api_error`. Transient
faults are retried by the SDK's own backoff: embedding happens during ingestion, outside any
LLM budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openai

from ..errors import ConfigError, ModelAPIError
from ..models.openai import api_error
from .base import InputType, Vectors, normalize

__all__ = ["OpenAIEmbedder"]


class OpenAIEmbedder:
    """An embedding model behind an OpenAI-compatible API.

    Args:
        model: The model name (``text-embedding-3-small``...).
        base_url: The API root; OpenAI's when ``None``.
        api_key: Required for OpenAI itself, optional for local servers.
        batch_size: Texts per request (OpenAI accepts up to 2,048).
        dimensions: Ask the model for shorter vectors (``text-embedding-3-*`` only).
        timeout: Seconds per request.
        max_retries: Retries of transient faults (429, 5xx, connection errors).
        client: A ready ``openai.AsyncOpenAI`` to use instead of building one.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 256,
        dimensions: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self.dimensions = dimensions
        if client is None:
            if (base_url is None or "api.openai.com" in base_url) and not api_key:
                raise ConfigError(
                    "no OpenAI API key for embeddings: OPENAI_API_KEY is not set",
                    hint="Export OPENAI_API_KEY, set OPENAI_BASE_URL to a compatible server, "
                    "or use MAESTRO_EMBEDDER=local.",
                )
            client = openai.AsyncOpenAI(
                api_key=api_key or "not-needed",
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
            )
        self._client = client

    @property
    def name(self) -> str:
        suffix = f"@{self.dimensions}" if self.dimensions else ""
        return f"openai:{self.model}{suffix}"

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        """Unit vectors for ``texts``, ``batch_size`` texts per request."""
        rows: list[list[float]] = []
        for lo in range(0, len(texts), self.batch_size):
            rows.extend(await self._request(list(texts[lo : lo + self.batch_size])))
        if not rows:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        return normalize(np.asarray(rows, dtype=np.float32))

    async def _request(self, batch: list[str]) -> list[list[float]]:
        where = self.base_url or "https://api.openai.com/v1"
        try:
            response = await self._client.embeddings.create(
                model=self.model,
                input=batch,
                encoding_format="float",
                dimensions=self.dimensions if self.dimensions else openai.omit,
            )
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise api_error(exc, name=self.name, where=where) from None
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(batch):
            raise ModelAPIError(
                f"{self.name} returned {len(data)} embeddings for {len(batch)} texts",
                model=self.name,
                status_code=502,
            )
        return [list(item.embedding) for item in data]

    async def aclose(self) -> None:
        await self._client.close()
