"""Reading plans for long documents: which pages to read first for each aspect.

A comparison step reads ``k`` chunks of one document. In a 120-page filing, retrieval over
the whole document may pick a definition or a cross-reference that mentions the aspect
instead of the section that states it. For a long document the model is shown its outline
(each page's first heading or line, a few tokens per page) and the aspects, and chooses the
page range to read first for each; the comparison's steps then retrieve within those pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from maestro_lite import UNTRUSTED_RULE, DocumentInfo, Message, Retriever, mark_untrusted

from ._render import one_line

__all__ = ["PageRange", "ReadingPlan", "outline", "ranges_from", "reading_messages"]


class PageRange(BaseModel):
    """Pages ``page_from`` to ``page_to`` of a document, both included."""

    page_from: int = Field(ge=1)
    page_to: int = Field(ge=1)

    @property
    def label(self) -> str:
        """``p. 7`` or ``pp. 7-9``."""
        if self.page_from == self.page_to:
            return f"p. {self.page_from}"
        return f"pp. {self.page_from}-{self.page_to}"


class _AspectPages(BaseModel):
    aspect: int = Field(description="The number of the aspect in the list")
    first_page: int = Field(description="The first page to read for it")
    last_page: int = Field(description="The last page to read for it")


class ReadingPlan(BaseModel):
    """What the model answers: pages per aspect."""

    pages: list[_AspectPages] = Field(
        description="One entry per aspect: the pages most likely to state it"
    )


_LINE_CHARS = 60
"""Characters of each outline line: enough for a heading, few tokens per page."""


def _form(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower()).strip()


async def outline(corpus: Retriever, document: DocumentInfo) -> list[tuple[int, str]]:
    """``(page, first heading or line)`` for each page of ``document`` with text, pages that
    share their line folded into the first of them.

    Lines that open many pages (running headers and footers such as "Supply Agreement -
    page 12", digits ignored) are skipped, so each page shows its own first line.
    """
    ids = [f"{document.id}:{i}" for i in range(document.chunks)]
    first_chunk: dict[int, tuple[int, str]] = {}
    for chunk in await corpus.get_chunks(ids):
        seen = first_chunk.get(chunk.page)
        if seen is None or chunk.index < seen[0]:
            first_chunk[chunk.page] = (chunk.index, chunk.text)
    lines = {
        page: [s for s in (raw.strip() for raw in text.splitlines()) if len(s) >= 3][:3]
        for page, (_, text) in first_chunk.items()
    }
    counts: dict[str, int] = {}
    for page_lines in lines.values():
        for form in {_form(line) for line in page_lines[:2]}:
            counts[form] = counts.get(form, 0) + 1
    running = {f for f, n in counts.items() if n > max(2, len(lines) // 4)}
    out: list[tuple[int, str]] = []
    for page in sorted(lines):
        line = next((x for x in lines[page] if _form(x) not in running), "")
        line = one_line(line, _LINE_CHARS)
        if line and not (out and out[-1][1] == line):
            out.append((page, line))
    return out


def reading_messages(
    task: str,
    name: str,
    document: DocumentInfo,
    entries: Sequence[tuple[int, str]],
    aspects: Sequence[str],
    *,
    max_pages: int,
) -> list[Message]:
    """The request for one document's reading plan."""
    listing = mark_untrusted(
        "\n".join(f"p{page}: {line}" for page, line in entries), source="outline"
    )
    numbered = "\n".join(f"{n}. {a}" for n, a in enumerate(aspects, start=1))
    return [
        Message.system("You plan how to read long documents. Answer in JSON. " + UNTRUSTED_RULE),
        Message.user(
            f"Task: {task}\n\nDocument: {one_line(name)}, {document.pages} pages. Outline (page: "
            f"its first heading or line):\n{listing}\n\nAspects:\n{numbered}\n\n"
            "For each aspect, give the pages most likely to state it (first_page to "
            f"last_page, at most {max_pages} pages); they are read first."
        ),
    ]


def ranges_from(
    plan: ReadingPlan, aspects: Sequence[str], *, pages: int, max_pages: int
) -> Mapping[str, PageRange]:
    """The model's answer as a range per aspect, inside the document and at most
    ``max_pages`` long (unknown aspect numbers and repeats are ignored)."""
    out: dict[str, PageRange] = {}
    for entry in plan.pages:
        if not 1 <= entry.aspect <= len(aspects) or aspects[entry.aspect - 1] in out:
            continue
        low, high = sorted((entry.first_page, entry.last_page))
        low = min(max(1, low), pages)
        high = min(max(low, high), pages, low + max_pages - 1)
        out[aspects[entry.aspect - 1]] = PageRange(page_from=low, page_to=high)
    return out
