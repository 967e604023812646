"""Structured output: the schema instructions sent with a call, parsing an answer into its
type (leniently, for backends that cannot enforce a schema), and the re-ask that sends an
invalid answer back with its errors (instructor-style)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..tokens import count_tokens
from .base import Message

__all__ = [
    "json_schema_for",
    "parse_output",
    "reask_cut_off",
    "reask_invalid",
    "schema_tokens",
    "short_errors",
    "with_schema",
]

T = TypeVar("T", bound=BaseModel)


@lru_cache(maxsize=1024)
def json_schema_for(output_type: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the model for ``output_type`` (computed once per type; treat
    the returned dict as read-only)."""
    return output_type.model_json_schema()


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _candidates(text: str) -> list[str]:
    """Texts that may hold the JSON object: as is, inside a code fence, or between braces."""
    out = [text.strip()]
    fence = _FENCE.search(text)
    if fence:
        out.append(fence.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start : end + 1])
    return out


def parse_output(text: str, output_type: type[T]) -> T:
    try:
        return output_type.model_validate_json(text)
    except ValidationError as exc:
        first_error = exc
    # Lenient fallbacks for backends that cannot enforce a schema: fences, prose around JSON.
    for candidate in _candidates(text)[1:]:
        try:
            return output_type.model_validate_json(candidate)
        except ValidationError:
            pass
    raise first_error


@lru_cache(maxsize=1024)
def _schema_instruction(output_type: type[BaseModel]) -> str:
    return (
        "Reply with one JSON object and nothing else. It must conform to this JSON schema "
        "(field descriptions say what to put in each field):\n"
        + json.dumps(json_schema_for(output_type), separators=(",", ":"))
    )


@lru_cache(maxsize=1024)
def schema_tokens(output_type: type[BaseModel]) -> int:
    """Prompt tokens the schema instructions of ``output_type`` add to a call (they go into
    the system message): what a prompt must leave room for besides its own text."""
    return count_tokens(_schema_instruction(output_type)) + 2  # the "\n\n" joining them


@lru_cache(maxsize=1024)
def _system_with_schema(system: str | None, output_type: type[BaseModel]) -> Message:
    # Steps share a few system prompts and schemas: the joined message is built once.
    instruction = _schema_instruction(output_type)
    return Message.system(instruction if system is None else system + "\n\n" + instruction)


def with_schema(messages: Sequence[Message], output_type: type[BaseModel]) -> list[Message]:
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = _system_with_schema(out[0].content, output_type)
    else:
        out.insert(0, _system_with_schema(None, output_type))
    return out


def short_errors(error: ValidationError, limit: int = 1500) -> str:
    lines = []
    for err in error.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"- {loc}: {err['msg']}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit] + "\n- ..."


def reask_cut_off(convo: Sequence[Message]) -> list[Message]:
    """The conversation again after an answer cut off at ``max_tokens``.

    Cut off mid-JSON, the errors are about truncation, not content. Shown its own cut-off
    text, a small model writes it again word for word (seen with the local 1.5B model: three
    identical replies). So the re-ask leaves that text out and asks for brevity.
    """
    return [
        *convo,
        Message.user(
            "Your previous reply was cut off because it was too long. Reply with "
            "a much shorter JSON object: brief strings, fewer items."
        ),
    ]


def reask_invalid(convo: Sequence[Message], answer: str, errors: str) -> list[Message]:
    """The conversation again after an answer that does not validate: the answer, then
    its errors and a request for the corrected object."""
    correction = (
        "That reply does not match the required JSON schema:\n"
        f"{errors}\nReply again with only the corrected JSON object."
    )
    return [*convo, Message.assistant(answer), Message.user(correction)]
