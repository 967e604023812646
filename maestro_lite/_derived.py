"""Frozen pydantic models that cache values derived from their fields."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, cached_property
from typing import Any, Self

from pydantic import BaseModel


@cache
def _cached_names(cls: type) -> tuple[str, ...]:
    return tuple(
        name
        for klass in cls.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, cached_property)
    )


class DerivedModel(BaseModel):
    """A frozen model whose ``cached_property`` values are computed once from its fields.

    ``model_copy(update=...)`` copies an instance's attributes, cached values included;
    here a copy with changed fields drops them, so they are computed again from the new
    fields (and a model validator that reads one checks the new fields, not the old).
    """

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        if update:
            for name in _cached_names(type(self)):
                copy.__dict__.pop(name, None)
        return copy
