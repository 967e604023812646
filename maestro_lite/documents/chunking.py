"""Token-aware chunking that keeps exact offsets and never loses text.

A chunk is a span of one page. Spans are chosen so that each holds at most
``chunk_tokens`` tokens (tiktoken, see :mod:`maestro_lite.tokens`) and ends, by preference, at
a paragraph break, then a sentence end, then a line break (PDF text breaks lines inside
sentences), then a space, and only as a last resort between two tokens. Consecutive chunks
of a page share about ``overlap_tokens`` tokens, starting at a sentence or word boundary
where one is near. Chunks are trimmed of surrounding
whitespace only, so every other character of a page lies in at least one chunk, and
``page.text[chunk.start:chunk.end] == chunk.text`` always holds.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..tokens import count_tokens, encoding
from .model import Chunk, Document, Page

__all__ = ["Chunker"]

# Break candidates, strongest first. A break position is where the next chunk may begin:
# after the whitespace that follows a paragraph, a line or a sentence.
_BREAKS = (
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"[.!?;\u2026][\"'\u201d\u2019)\]]*\s+"),
    re.compile(r"\n\s*"),
    re.compile(r"\s+"),
)
_SENTENCE_OR_WORD = (_BREAKS[1], _BREAKS[3])


def _token_starts(text: str) -> list[int]:
    """Character offset at which each token of ``text`` starts."""
    enc = encoding()
    starts: list[int] = []
    position = 0
    for piece in enc.decode_tokens_bytes(enc.encode(text, disallowed_special=())):
        starts.append(position)
        # A token may end inside a multi-byte character; count characters by their first
        # byte (UTF-8 continuation bytes are 0b10xxxxxx).
        position += len(piece) if piece.isascii() else sum(1 for b in piece if b & 0xC0 != 0x80)
    return starts


def _last_break(text: str, lo: int, hi: int) -> int | None:
    """The latest break in ``text[lo:hi]`` of the strongest kind present, or ``None``."""
    for pattern in _BREAKS:
        last = None
        for match in pattern.finditer(text, lo, hi):
            last = match.end()
        if last is not None and lo < last <= hi:
            return last
    return None


def _first_break(text: str, lo: int, hi: int) -> int | None:
    """The earliest sentence (else word) break in ``text[lo:hi]``, or ``None``."""
    for pattern in _SENTENCE_OR_WORD:
        match = pattern.search(text, lo, hi)
        if match is not None and match.end() < hi:
            return match.end()
    return None


class Chunker(BaseModel):
    """Splits documents into chunks of at most ``chunk_tokens`` tokens.

    Example::

        chunks = Chunker(chunk_tokens=200, overlap_tokens=30).chunk(document)
    """

    model_config = ConfigDict(frozen=True)

    chunk_tokens: int = Field(default=200, ge=16)
    """Most tokens in one chunk. 200 keeps a chunk (plus its title) inside the 256
    word-piece window of all-MiniLM-L6-v2, so nothing is silently truncated when embedded."""
    overlap_tokens: int = Field(default=30, ge=0)
    """About how many tokens consecutive chunks of a page share."""

    @model_validator(mode="after")
    def _overlap_below_half(self) -> Chunker:
        if self.overlap_tokens * 2 >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be less than half of chunk_tokens")
        return self

    def chunk(self, document: Document) -> list[Chunk]:
        """The chunks of ``document``, in order; pages without text give none."""
        chunks: list[Chunk] = []
        for page in document.pages:
            for start, end in self.spans(page.text):
                chunks.append(self._make(document, page, len(chunks), start, end))
        return chunks

    def spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character spans of the chunks of one page's text."""
        starts = _token_starts(text)
        n = len(text)
        spans: list[tuple[int, int]] = []
        pos = _skip_space(text, 0, n)
        while pos < n:
            end = self._end(text, starts, pos)
            trimmed = end
            while trimmed > pos and text[trimmed - 1].isspace():
                trimmed -= 1
            spans.append((pos, trimmed))
            if end >= n:
                break
            pos = _skip_space(text, self._next_start(text, starts, pos, end), n)
        return spans

    def _end(self, text: str, starts: Sequence[int], pos: int) -> int:
        first = bisect.bisect_left(starts, pos)
        limit = first + self.chunk_tokens
        if limit >= len(starts) and count_tokens(text[pos:]) <= self.chunk_tokens:
            return len(text)
        hard = starts[min(limit, len(starts) - 1)]
        # Look for a natural break in the second half of the window only: ending earlier
        # would make many small chunks.
        soft = starts[min(first + self.chunk_tokens // 2, len(starts) - 1)]
        while True:
            end = _last_break(text, soft, hard) or hard
            # A span's own token count can differ from the page's at its edges: pull the
            # window in by the excess until the span really fits.
            excess = count_tokens(text[pos:end]) - self.chunk_tokens
            if excess <= 0 or end <= pos + 1:
                return max(end, pos + 1)
            index = bisect.bisect_left(starts, end) - excess
            hard = starts[index] if index > first else pos + 1
            soft = min(soft, hard)

    def _next_start(self, text: str, starts: Sequence[int], pos: int, end: int) -> int:
        if self.overlap_tokens == 0:
            return end
        back = bisect.bisect_left(starts, end) - self.overlap_tokens
        lo = starts[back] if back > 0 else 0
        lo = max(lo, pos + 1)  # always move forward
        if lo >= end:
            return end
        found = _first_break(text, lo, end)
        return found if found is not None else lo

    @staticmethod
    def _make(document: Document, page: Page, index: int, start: int, end: int) -> Chunk:
        return Chunk(
            id=f"{document.id}:{index}",
            document_id=document.id,
            index=index,
            text=page.text[start:end],
            page=page.number,
            start=start,
            end=end,
            doc_start=page.start + start,
            doc_end=page.start + end,
            title=document.title,
            path=document.path,
            metadata=dict(document.metadata),
        )


def _skip_space(text: str, pos: int, n: int) -> int:
    while pos < n and text[pos].isspace():
        pos += 1
    return pos
