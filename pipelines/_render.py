"""Markdown pieces shared by the reports: numbered citations and the requirement table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from maestro_lite import Citation, Claim, Plan, RequirementResult, Usage, one_line

__all__ = [
    "CitationIndex",
    "RunFacts",
    "one_line",
    "requirements_table",
    "status_detail",
    "unique_citations",
]


class RunFacts(BaseModel):
    """What every pipeline report says about the run behind it."""

    requirements: list[RequirementResult] = Field(default_factory=list)
    """Each requirement and built-in check, with score and reason."""
    run_id: str = ""
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0
    budget_exhausted: str | None = None
    """Which limit ended the run early, if one did."""
    error: str | None = None
    plan: Plan | None = None
    notes: list[str] = Field(default_factory=list)
    """What the pipeline did around the run, such as a call before it that the budget
    refused (the pipeline then went on without its answer)."""

    def closing(self, index: CitationIndex) -> list[str]:
        """The end of a report: the requirement table (built-in checks when they failed),
        the numbered sources of ``index``, then :meth:`footer`."""
        lines: list[str] = []
        table = requirements_table(self.requirements)
        if table:
            lines += ["## Requirements", "", *table, ""]
        if index.citations:
            lines += ["## Sources", "", *index.sources(), ""]
        return lines + self.footer()

    def footer(self) -> list[str]:
        """Notes, then the closing line of the report: model, calls, tokens, time, run id."""
        u = self.usage
        return [
            *(f"> {one_line(n)}\n" for n in self.notes),
            "---",
            f"_{self.model or 'model'}: {u.requests} call(s), {u.input_tokens} input + "
            f"{u.output_tokens} output tokens, {self.wall_seconds:.0f}s; run {self.run_id}_",
            "",
        ]

    def write(self, directory: str | Path, *, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.md`` (:meth:`to_markdown`) and ``<stem>.json`` into ``directory``
        (created if needed)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        md_path, json_path = out / f"{stem}.md", out / f"{stem}.json"
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        json_path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return md_path, json_path

    def to_markdown(self) -> str:
        raise NotImplementedError


class CitationIndex:
    """Numbers citations in order of first use, so one source span is one footnote."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._numbers: dict[tuple[str, int, int], int] = {}

    def number(self, citation: Citation) -> int:
        key = (citation.chunk_id, citation.start, citation.end)
        if key not in self._numbers:
            self.citations.append(citation)
            self._numbers[key] = len(self.citations)
        return self._numbers[key]

    def refs(self, citations: Iterable[Citation]) -> str:
        """``[1][3]`` for the citations (empty when there are none)."""
        numbers = sorted({self.number(c) for c in citations})
        return "".join(f"[{n}]" for n in numbers)

    def claim_lines(self, claims: Sequence[Claim]) -> list[str]:
        """One bullet per claim with its references; uncited claims are marked."""
        return [f"- {one_line(c.text)} {self.refs(c.citations) or '**(uncited)**'}" for c in claims]

    def sources(self) -> list[str]:
        """The numbered source list: document, page, exact quote."""
        lines = []
        for n, c in enumerate(self.citations, start=1):
            title = one_line(c.title or c.path or c.document_id)
            lines.append(f'{n}. {title}, page {c.page}: "{one_line(c.quote)}"')
        return lines


def status_detail(results: Sequence[RequirementResult]) -> str:
    """What a report's status rests on, built-in checks included (they can make a run unmet
    on their own): ``2 of 3 requirements met; built-in checks failed: answer.figures``."""
    declared = [r for r in results if r.kind != "builtin"]
    failed = [r.id for r in results if r.kind == "builtin" and not r.passed]
    text = f"{sum(r.passed for r in declared)} of {len(declared)} requirements met"
    if failed:
        text += "; built-in checks failed: " + ", ".join(failed[:6])
        text += f" (+{len(failed) - 6} more)" if len(failed) > 6 else ""
    return text


def requirements_table(results: Sequence[RequirementResult], *, builtin: bool = False) -> list[str]:
    """A Markdown table of the requirement results (built-in checks only when they failed or
    carry a finding, unless ``builtin``)."""
    rows = [r for r in results if builtin or r.kind != "builtin" or not r.passed or r.finding]
    if not rows:
        return []
    lines = ["| requirement | score | result | reason |", "|---|---|---|---|"]
    for r in rows:
        mark = "pass" if r.passed else "**FAIL**"
        reason = one_line(r.reason, 160).replace("|", "\\|")
        description = one_line(r.description).replace("|", "\\|")
        lines.append(f"| {r.id}: {description} | {r.score:.2f} | {mark} | {reason} |")
    return lines


def unique_citations(claims: Iterable[Claim]) -> list[Citation]:
    """The citations of ``claims``, each source span once, in order."""
    seen: dict[tuple[str, int, int], Citation] = {}
    for claim in claims:
        for c in claim.citations:
            seen.setdefault((c.chunk_id, c.start, c.end), c)
    return list(seen.values())
