"""The data of documents: pages with exact offsets, and chunks that point back into them.

Invariants every loader and chunker keeps (tests check them):

* ``document.text[page.start : page.start + len(page.text)] == page.text``
* a chunk never crosses a page, and
  ``page.text[chunk.start : chunk.end] == chunk.text`` and
  ``document.text[chunk.doc_start : chunk.doc_end] == chunk.text``

so a citation (document, page, offsets) always resolves to the exact original text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PAGE_SEPARATOR", "Chunk", "Document", "DocumentInfo", "MetadataValue", "Page"]

MetadataValue = str | int | float | bool

PAGE_SEPARATOR = "\n\n"
"""Joins page texts into the document text."""


class Page(BaseModel):
    """One page of text (a whole text file is one page)."""

    model_config = ConfigDict(frozen=True)

    number: int = Field(ge=1)
    """1-based page number."""
    text: str
    start: int = Field(ge=0)
    """Offset of this page's first character in the document text."""


class Document(BaseModel):
    """A loaded document."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Stable id derived from the content (the same bytes always give the same id)."""
    path: str
    title: str
    media_type: str
    """``application/pdf``, ``text/plain``, ``text/markdown``..."""
    pages: list[Page]
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        return PAGE_SEPARATOR.join(p.text for p in self.pages)


class Chunk(BaseModel):
    """A retrievable slice of one page of a document."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Unique and stable: ``<document id>:<index>``."""
    document_id: str
    index: int = Field(ge=0)
    """Position of the chunk in its document."""
    text: str
    page: int = Field(ge=1)
    start: int = Field(ge=0)
    """Offset of the chunk in its page's text."""
    end: int = Field(ge=0)
    doc_start: int = Field(ge=0)
    """Offset of the chunk in the document text."""
    doc_end: int = Field(ge=0)
    title: str = ""
    """Title of the document (repeated here so a hit is self-describing)."""
    path: str = ""
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class DocumentInfo(BaseModel):
    """What a corpus knows about one document, without its text."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    path: str
    """Where the document was first ingested from: the path shown and cited."""
    pages: int
    chars: int
    chunks: int
    status: Literal["ok", "no_text"] = "ok"
    """``no_text``: the file has no text layer (for example a scan); nothing is embedded."""
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    media_type: str = ""
    size: int = Field(default=0, ge=0)
    """Bytes of the source file (0 for documents ingested from memory)."""
    ingested_at: datetime | None = None
    notes: list[str] = Field(default_factory=list)
    """What the loader noticed without failing: pages without a text layer, recovered
    damage, a fallback text encoding."""
    paths: list[str] = Field(default_factory=list)
    """Every path the document was ingested from, ``path`` first: files with the same
    content are one document (its id is their content hash). The document stays in the
    corpus while any of them still holds it. ``[path]`` when not given (and for records
    written before this field existed)."""

    @model_validator(mode="before")
    @classmethod
    def _path_among_paths(cls, data: Any) -> Any:
        if isinstance(data, dict) and "path" in data:
            paths = list(data.get("paths") or [])
            if data["path"] not in paths:
                return {**data, "paths": [data["path"], *paths]}
        return data
