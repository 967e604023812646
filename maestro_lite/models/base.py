"""The model interface: messages in, text (optionally constrained by a JSON schema) out.

A backend implements one method, :meth:`ChatModel.request`: one call on the wire, no retries,
no validation. Everything above that (schema instructions, parsing, re-asks, retries, usage
accounting, budget checks) lives once in :func:`maestro_lite.models.generate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatModel",
    "Message",
    "ModelSettings",
    "RawResponse",
    "WrappedModel",
    "cache_identity",
]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls(role="assistant", content=content)


class ModelSettings(BaseModel):
    """Sampling and limits for one call; ``None`` leaves the backend's default."""

    model_config = ConfigDict(frozen=True)

    temperature: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)
    """Most tokens the model may generate."""
    seed: int | None = None
    timeout: float | None = Field(default=None, gt=0)
    """Seconds for one attempt; a call that takes longer fails with ``ModelTimeout``."""


class RawResponse(BaseModel):
    """What one call on the wire returned."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    """The model that answered, as the backend names it."""
    input_tokens: int | None = None
    """As reported by the provider; ``None`` when it reports nothing (then counted locally)."""
    output_tokens: int | None = None
    finish_reason: str | None = None
    cached: bool = False
    """Served from a response cache: no call was made (counted in ``Usage.cached_requests``)."""
    key: str | None = None
    """The call's key (as the response cache keys it), set by a run's
    :class:`~maestro_lite.runs.ReplayModel` so that the run records this answer."""
    waited: float = 0.0
    """Seconds the call waited for a provider-limit permit before it was sent (set by
    :class:`~maestro_lite.limits.LimitedModel`)."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model backend. Implement :meth:`request`; use it through ``generate``."""

    @property
    def name(self) -> str:
        """A stable identifier such as ``openai:gpt-4o-mini`` or ``local:qwen2.5-coder-1.5b``.
        It keys caches and appears in usage records."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens the model can attend to (prompt plus output)."""
        ...

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        """Make one call. Constrain the output to ``json_schema`` when given, as far as the
        backend can. Raise :class:`maestro_lite.errors.ModelAPIError` subclasses on failure."""
        ...


def cache_identity(model: ChatModel) -> str:
    """What keys ``model``'s answers in the response cache and in a run's record: its
    ``cache_identity`` where it has one (the endpoint or the weights file as well as the
    name, so two servers or two files under one name never share answers), else its name."""
    identity = getattr(model, "cache_identity", None)
    return str(identity) if identity else model.name


class WrappedModel:
    """Base of models that add behaviour around another model (a cache, a rate limiter): they
    answer to the same name and window, so prompts and usage records are unchanged."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    @property
    def cache_identity(self) -> str:
        return cache_identity(self.inner)

    @property
    def base_url(self) -> str | None:
        """The wrapped model's endpoint, if it has one (limits are kept per endpoint)."""
        url = getattr(self.inner, "base_url", None)
        return str(url) if url is not None else None
