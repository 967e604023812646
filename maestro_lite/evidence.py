"""Evidence: what a step's model may cite, packed into its context, resolved to exact spans.

Small models paraphrase when asked to retype quotes, but reliably pick ids from a list (see
FACTS.md). So the model is shown numbered sentences (``c2.s3``: chunk 2, sentence 3) and cites
ids; the structured-output schema makes the ids an ``enum``, so a grammar-constrained model
cannot invent one. The framework then resolves each id to the exact text, page and offsets.

Packing takes whole chunks, most relevant first, until the token budget is spent: a chunk is
never cut mid-citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .documents.model import Chunk
from .result import Citation
from .retrieval import SearchHit
from .tokens import count_tokens
from .untrusted import one_line

__all__ = ["EvidenceItem", "EvidencePool", "sentence_spans"]

# A sentence ends at . ! or ? followed by whitespace and an uppercase letter, digit, quote or
# bracket. A blank line or a list bullet also separates. A single line break does not: PDF
# text breaks lines mid-sentence.
_BOUNDARY = re.compile(
    r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$])"
    r"|\n[ \t]*\n\s*"
    r"|\n(?=[ \t]*(?:[-*\u2022]|\d{1,3}[.)])[ \t])"
)
_MIN_SENTENCE = 12
_MAX_SENTENCES_PER_CHUNK = 40


@lru_cache(maxsize=8192)
def sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` offsets of the sentences of ``text``, stripped of outer whitespace.
    Fragments shorter than a few characters are merged into their neighbour. (Cached: the
    same chunks come back in many steps.)"""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start() + (len(match.group(0)) - len(match.group(0).lstrip("\"')]")))
        spans.append((start, end))
        start = match.end()
    spans.append((start, len(text)))
    stripped: list[tuple[int, int]] = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            stripped.append((s, e))
    merged: list[tuple[int, int]] = []
    for s, e in stripped:
        if merged and (e - s < _MIN_SENTENCE or merged[-1][1] - merged[-1][0] < _MIN_SENTENCE):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    if len(merged) > _MAX_SENTENCES_PER_CHUNK:
        # Pathological text (tables of numbers): group sentences so ids stay few.
        size = -(-len(merged) // _MAX_SENTENCES_PER_CHUNK)
        merged = [
            (merged[i][0], merged[min(i + size, len(merged)) - 1][1])
            for i in range(0, len(merged), size)
        ]
    return tuple(merged)


_HEADER_TOKENS = 12
"""A chunk's header line (``[title, page N]``)."""
_ID_TOKENS = 6
"""An evidence id in front of its sentence (``c12.s3: ``)."""


@lru_cache(maxsize=8192)
def _chunk_cost(text: str) -> int:
    """Prompt tokens a chunk costs: its text, a header, and an id per sentence."""
    return count_tokens(text) + _HEADER_TOKENS + _ID_TOKENS * len(sentence_spans(text))


@lru_cache(maxsize=65536)
def _line_cost(text: str) -> int:
    """Prompt tokens of one rendered evidence line: its id, then the sentence."""
    return count_tokens(" ".join(text.split())) + _ID_TOKENS


@dataclass(frozen=True)
class EvidenceItem:
    """One citable span."""

    id: str
    chunk: Chunk
    start: int
    """Offset in the chunk text."""
    end: int

    @property
    def text(self) -> str:
        return self.chunk.text[self.start : self.end]

    def citation(self) -> Citation:
        c = self.chunk
        return Citation(
            evidence_id=self.id,
            chunk_id=c.id,
            document_id=c.document_id,
            title=c.title,
            path=c.path,
            page=c.page,
            start=c.start + self.start,
            end=c.start + self.end,
            quote=self.text,
        )


class EvidencePool:
    """The numbered evidence of one step."""

    def __init__(self, items: Sequence[EvidenceItem], chunks: Sequence[Chunk]) -> None:
        self.items = list(items)
        self.chunks = list(chunks)
        self._by_id = {item.id: item for item in self.items}

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def tokens(self) -> int:
        """Prompt tokens of :meth:`render` (estimated: ids, sentences, chunk headers)."""
        headers = sum(
            1
            for i, item in enumerate(self.items)
            if i == 0 or self.items[i - 1].chunk.id != item.chunk.id
        )
        return sum(_line_cost(item.text) for item in self.items) + _HEADER_TOKENS * headers

    def shed(
        self, tokens: int, *, whole_chunks: bool = False, keep_first: bool = False
    ) -> EvidencePool:
        """The pool without its last items (the least relevant), at least ``tokens`` of
        them if it has that many. ``whole_chunks``: drop whole chunks, never part of one;
        ``keep_first``: the first chunk stays whatever it costs."""
        items = list(self.items)
        first = items[0].chunk.id if items else None
        freed = 0
        while items and freed < tokens:
            if keep_first and items[-1].chunk.id == first:
                break
            dropped = items.pop()
            freed += _line_cost(dropped.text)
            while whole_chunks and items and items[-1].chunk.id == dropped.chunk.id:
                freed += _line_cost(items.pop().text)
        kept = {item.chunk.id for item in items}
        return EvidencePool(items, [c for c in self.chunks if c.id in kept])

    @classmethod
    def from_hits(
        cls, hits: Iterable[SearchHit], *, max_tokens: int, id_tokens: int = 0
    ) -> EvidencePool:
        """Whole chunks in the order given (best first), deduplicated, while they fit.

        Args:
            max_tokens: Prompt tokens the evidence may take.
            id_tokens: What each evidence id costs elsewhere in the prompt (the output
                schema lists every id), counted per sentence.
        """
        items: list[EvidenceItem] = []
        chunks: list[Chunk] = []
        seen: set[str] = set()
        # Overlapping chunks of one document repeat sentences: offer each span once.
        offered: dict[str, list[tuple[int, int]]] = {}
        used = 0
        for hit in hits:
            chunk = hit.chunk
            if chunk.id in seen:
                continue
            cost = _chunk_cost(chunk.text) + id_tokens * len(sentence_spans(chunk.text))
            if used + cost > max_tokens:
                if chunks:
                    continue  # a smaller, lower-ranked chunk may still fit
                # Even the best chunk is too big: keep it; the model's window is the limit.
            seen.add(chunk.id)
            spans = offered.setdefault(chunk.document_id, [])
            fresh = [
                (s, e)
                for s, e in sentence_spans(chunk.text)
                if not any(a <= chunk.doc_start + s and chunk.doc_start + e <= b for a, b in spans)
            ]
            if not fresh:
                continue
            used += cost
            chunks.append(chunk)
            n = len(chunks)
            for j, (s, e) in enumerate(fresh, start=1):
                items.append(EvidenceItem(id=f"c{n}.s{j}", chunk=chunk, start=s, end=e))
                spans.append((chunk.doc_start + s, chunk.doc_start + e))
        return cls(items, chunks)

    @classmethod
    def from_citations(
        cls, citations: Iterable[Citation], chunks: dict[str, Chunk], *, start: int = 1
    ) -> EvidencePool:
        """Evidence re-offered from earlier steps' citations (``e1``, ``e2``...)."""
        items: list[EvidenceItem] = []
        seen: set[tuple[str, int, int]] = set()
        used_chunks: dict[str, Chunk] = {}
        n = start - 1
        for cit in citations:
            key = (cit.chunk_id, cit.start, cit.end)
            chunk = chunks.get(cit.chunk_id)
            if key in seen or chunk is None:
                continue
            seen.add(key)
            n += 1
            used_chunks[chunk.id] = chunk
            items.append(
                EvidenceItem(
                    id=f"e{n}",
                    chunk=chunk,
                    start=cit.start - chunk.start,
                    end=cit.end - chunk.start,
                )
            )
        return cls(items, list(used_chunks.values()))

    def merged(self, other: EvidencePool) -> EvidencePool:
        chunks = {c.id: c for c in [*self.chunks, *other.chunks]}
        return EvidencePool([*self.items, *other.items], list(chunks.values()))

    def render(self) -> str:
        """The evidence as the model sees it: a header per chunk, one line per id."""
        lines: list[str] = []
        current: str | None = None
        for item in self.items:
            chunk = item.chunk
            if chunk.id != current:
                name = one_line(chunk.title or chunk.path or chunk.document_id)
                lines.append(f"[{name}, page {chunk.page}]")
                current = chunk.id
            lines.append(f"{item.id}: {' '.join(item.text.split())}")
        return "\n".join(lines)

    def resolve(self, ids: Iterable[str]) -> tuple[list[Citation], list[str]]:
        """Citations for ``ids``, and the ids that are not in the pool (fabricated)."""
        citations: list[Citation] = []
        unknown: list[str] = []
        for evidence_id in ids:
            item = self._by_id.get(evidence_id)
            if item is None:
                unknown.append(evidence_id)
            else:
                citations.append(item.citation())
        return citations, unknown
