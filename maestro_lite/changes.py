"""How two documents' clauses compare: the records :mod:`.versions` finds and a step keeps."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["Change", "ChangeSide", "cite"]


class ChangeSide(BaseModel):
    """One document's sentence in a change."""

    document_id: str
    title: str
    ref: str
    """The evidence id the comparing step cites it by."""
    sentence: str
    values: list[str] = []
    """The values it states that the other side does not (``"90 days"``)."""
    words: list[str] = []
    """Its words that the other side lacks, when no value differs (``"New York"``)."""


class Change(BaseModel):
    """A clause of two documents: unchanged, changed, or present in one only."""

    kind: Literal["unchanged", "changed", "added", "removed"]
    sides: list[ChangeSide]
    """``[earlier, later]`` for unchanged and changed clauses; the one side otherwise."""

    def describe(self) -> str:
        """One line for a prompt or a report."""
        if self.kind == "unchanged":
            a, b = self.sides
            return f"unchanged: {cite(a)} and {cite(b)} say the same: {_short(a.sentence)!r}"
        if self.kind == "changed":
            a, b = self.sides
            return f"changed: {cite(a)} says {_what(a)} where {cite(b)} says {_what(b)}"
        (side,) = self.sides
        where = "only in" if self.kind == "added" else "only in the earlier"
        return f"{self.kind}: {where} {cite(side)}: {_short(side.sentence)!r}"


def _title(side: ChangeSide) -> str:
    """A document's title, short enough to repeat: up to a " - " subtitle, or 60 characters
    cut at a word."""
    title = " ".join(side.title.split()).split(" - ", 1)[0]
    if len(title) > 60:
        title = title[:60].rsplit(" ", 1)[0] + "..."
    return title or side.document_id


def cite(side: ChangeSide) -> str:
    return f"{_title(side)} [{side.ref}]"


def _short(sentence: str, limit: int = 160) -> str:
    text = " ".join(sentence.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _what(side: ChangeSide) -> str:
    shown = side.values or side.words
    return ", ".join(repr(v) for v in shown) if shown else repr(_short(side.sentence, 80))
