"""One mapping of the ``openai`` SDK's exceptions to maestro-lite's model errors, for every
client of an OpenAI-compatible endpoint (chat completions, ``GET /models``, embeddings)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import openai

from .errors import (
    ModelAPIError,
    ModelAuthError,
    ModelConnectionError,
    ModelTimeout,
    ModelUnreachable,
)

__all__ = ["api_error"]

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
