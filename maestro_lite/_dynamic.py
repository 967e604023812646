"""Helpers to build pydantic field types at run time (enums of evidence ids, optionals).

Type checkers cannot follow types computed at run time, so these return ``Any``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast


def literal_of(values: Sequence[str]) -> Any:
    """``Literal["a", "b", ...]`` of ``values`` (which must not be empty)."""
    return cast(Any, Literal)[tuple(values)]


def list_of(item: Any) -> Any:
    """``list[item]``."""
    return cast(Any, list)[item]


def optional(annotation: Any) -> Any:
    """``annotation | None``."""
    return annotation | None
