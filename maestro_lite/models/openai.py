"""Any OpenAI-compatible chat-completions endpoint: OpenAI, vLLM, Ollama, llama.cpp's server.

Imports ``openai`` (as does the embedder, which maps its errors with :func:`api_error`, the one
mapping of the SDK's exceptions to ours, below). The client is created with ``max_retries=0``:
retries belong to :func:`~maestro_lite.models.generate`, where each is counted and budgeted.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import openai

from ..errors import (
    ConfigError,
    ModelAPIError,
    ModelAuthError,
    ModelConnectionError,
    ModelTimeout,
    ModelUnreachable,
)
from .base import Message, ModelSettings, RawResponse

__all__ = ["OpenAIModel", "StructuredMode"]

StructuredMode = Literal["json_schema", "json_object", "prompt"]
"""How a JSON schema is sent: ``json_schema`` (OpenAI structured outputs, vLLM, Ollama,
llama.cpp server), ``json_object`` (JSON mode, plus the schema under ``schema``, which
llama-cpp-python's server turns into a grammar), or ``prompt`` (only in the instructions)."""

_OPENAI_HOST = "api.openai.com"


# Keywords OpenAI's strict mode rejects; pydantic still enforces them on the answer.
_NOT_STRICT = ("default", "minLength", "maxLength", "minItems", "maxItems")


def _strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Adapt a pydantic JSON schema to OpenAI's strict mode: closed objects, every property
    required (optional ones stay nullable), no keywords strict mode does not support."""
    out = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for keyword in _NOT_STRICT:
                node.pop(keyword, None)
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(out)
    return out


class OpenAIModel:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: The model name at the endpoint (``gpt-4o-mini``, ``qwen2.5:7b``...).
        base_url: The API root, e.g. ``http://127.0.0.1:8000/v1``; OpenAI's when ``None``.
        api_key: The key; required for OpenAI itself, optional for local servers.
        timeout: Seconds per request.
        structured_mode: How a JSON schema is sent (see :data:`StructuredMode`).
        strict: Ask for OpenAI's strict schema adherence (``json_schema`` mode only).
        context_window: Tokens the model accepts; used to pack retrieved context.
        client: A ready ``openai.AsyncOpenAI`` to use instead of building one.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        structured_mode: StructuredMode = "json_schema",
        strict: bool = False,
        context_window: int = 128_000,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.structured_mode: StructuredMode = structured_mode
        self.strict = strict
        self._context_window = context_window
        is_openai = base_url is None or _OPENAI_HOST in base_url
        if client is None:
            if is_openai and not api_key:
                raise ConfigError(
                    "no OpenAI API key: OPENAI_API_KEY is not set",
                    hint="Export OPENAI_API_KEY, or set OPENAI_BASE_URL to a local "
                    "OpenAI-compatible server, or use the local provider (the default).",
                )
            client = openai.AsyncOpenAI(
                api_key=api_key or "not-needed",  # local servers ignore the key
                base_url=base_url,
                timeout=timeout,
                max_retries=0,
            )
        self._client = client
        # OpenAI's newer models reject max_tokens; most compatible servers only know it.
        self._max_tokens_param = "max_completion_tokens" if is_openai else "max_tokens"

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def cache_identity(self) -> str:
        """The name and the endpoint: one model name served by two servers (two
        fine-tunes, two quantisations) never shares cached answers."""
        return f"{self.name}@{self.base_url or 'https://' + _OPENAI_HOST}"

    @property
    def context_window(self) -> int:
        return self._context_window

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        match self.structured_mode:
            case "json_schema":
                return {
                    "type": "json_schema",
                    "json_schema": {
                        "name": str(schema.get("title", "output"))[:64],
                        "schema": _strict_schema(schema) if self.strict else schema,
                        "strict": self.strict,
                    },
                }
            case "json_object":
                return {"type": "json_object", "schema": schema}
            case "prompt":
                return None

    async def request(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None,
        settings: ModelSettings,
    ) -> RawResponse:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if json_schema is not None and (fmt := self._response_format(json_schema)):
            kwargs["response_format"] = fmt
        if settings.temperature is not None:
            kwargs["temperature"] = settings.temperature
        if settings.max_tokens is not None:
            kwargs[self._max_tokens_param] = settings.max_tokens
        if settings.seed is not None:
            kwargs["seed"] = settings.seed
        if settings.timeout is not None:
            kwargs["timeout"] = settings.timeout
        where = self.base_url or "https://" + _OPENAI_HOST
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise api_error(
                exc,
                name=self.name,
                where=where,
                hint_404=f"Check the model name {self.model!r} and the base URL.",
            ) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            # A truncated or non-JSON body (the SDK raises JSONDecodeError): a server fault
            # that a retry may cure, reported like a 502.
            raise ModelAPIError(
                f"{self.name} at {where} sent a malformed response: {exc}",
                model=self.name,
                status_code=502,
            ) from None
        if not getattr(response, "choices", None):
            raise ModelAPIError(
                f"{self.name} at {where} sent a response without choices",
                model=self.name,
                status_code=502,
            )
        choice = response.choices[0]
        usage = response.usage
        return RawResponse(
            text=choice.message.content or "",
            model=f"openai:{response.model or self.model}",
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            finish_reason=choice.finish_reason,
        )

    async def ping(self) -> list[str]:
        """The model ids the endpoint lists (``GET /models``); raises like :meth:`request`."""
        where = self.base_url or "https://" + _OPENAI_HOST
        try:
            page = await self._client.models.list()
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise api_error(exc, name=self.name, where=where, request=" to GET /models") from None
        return [m.id for m in page.data]

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def __aenter__(self) -> OpenAIModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# --- one mapping of the SDK's exceptions, for every client of an OpenAI-compatible
# endpoint (chat completions, GET /models, embeddings) -------------------------------


_CHECK_SERVER = "Check that the server is running and OPENAI_BASE_URL is right"

_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
"""The HTTP client's failures before a request went out: refused, no such host, no
connection in time. By name: the SDK's HTTP client is ``httpx`` or ``httpx2`` by version."""


def api_error(
    exc: openai.APIConnectionError | openai.APIStatusError,
    *,
    name: str,
    where: str,
    request: str = "",
    hint_404: str | None = None,
) -> ModelAPIError:
    """The maestro-lite error for ``exc``, raised by a request to the endpoint at ``where``.

    Args:
        exc: What the SDK raised.
        name: The model (or embedder) named in the error.
        where: The endpoint's address, as the message shows it.
        request: What was asked, when not the model's own call (``" to GET /models"``).
        hint_404: The hint for a 404 (the model name or the address is wrong).

    Returns:
        :class:`ModelUnreachable` when nothing was sent, :class:`ModelTimeout`,
        :class:`ModelConnectionError`, :class:`ModelAuthError` for 401/403, else
        :class:`ModelAPIError` with the status, ``Retry-After`` and the body's start.
    """
    if isinstance(exc, openai.APIConnectionError):
        # A connect timeout is an APITimeoutError too, yet nothing was sent: check first.
        if _not_sent(exc):
            return ModelUnreachable(
                f"cannot reach {name} at {where}: {exc.__cause__ or exc} (nothing was sent)",
                model=name,
                hint=f"{_CHECK_SERVER} (`maestro doctor` tests it).",
            )
        if isinstance(exc, openai.APITimeoutError):
            return ModelTimeout(
                f"{name} at {where} timed out{request}",
                model=name,
                hint="Raise the timeout, or check the server's load.",
            )
        return ModelConnectionError(
            f"cannot reach {name} at {where}: {exc.__cause__ or exc}",
            model=name,
            hint=f"{_CHECK_SERVER} (`maestro doctor` tests it).",
        )
    auth = exc.status_code in (401, 403)
    hint = "Check OPENAI_API_KEY for this endpoint." if auth else None
    if exc.status_code == 404:
        hint = hint_404
    return (ModelAuthError if auth else ModelAPIError)(
        f"{name} at {where} answered HTTP {exc.status_code}{request}: {_message(exc)}",
        model=name,
        status_code=exc.status_code,
        retry_after=_retry_after(exc),
        body=exc.response.text[:500] if exc.response is not None else None,
        hint=hint,
    )


def _not_sent(exc: openai.APIConnectionError) -> bool:
    cause = exc.__cause__
    return cause is not None and bool(_NOT_SENT & {c.__name__ for c in type(cause).__mro__})


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return exc.message


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """The ``Retry-After`` header in seconds: a number of seconds, or an HTTP date."""
    value = exc.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
