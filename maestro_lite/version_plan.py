"""A plan without a planner call, for a task that names document versions by year.

"How did the notice period change between the 2023 and 2025 agreements?" over a corpus whose
documents are told apart by year (see :func:`~maestro_lite.grounding.distinguishing_years`)
has one good plan, the one the planner's own example shows: read each named version on the
subject, then compare. Asking a 1.5B planner for it costs the run's longest call (a ~1,100
token prompt and ~200 tokens of JSON under a grammar) and sometimes returns worse. So when
every year the task names picks exactly one document, the plan is written here:

* one ``answer`` step per version, retrieval filtered to that document, searching for the
  task's subject (its content words, less the years, the words every document's name shares
  and the words of asking about change);
* one ``compare`` step over them, which is shown what changed (:mod:`.versions`).

Anything else (no years, a year naming several documents or none, a single version) is left
to the planner.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .conflicts import terms
from .documents.model import DocumentInfo
from .grounding import distinguishing_years
from .plan import Plan, Step
from .retrieval import SearchFilter

__all__ = ["version_plan"]

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_ASKING = frozenset(
    terms(
        "how what which did does do has have was were is are change changed changes differ "
        "difference compare comparison between from versus version versions document "
        "documents clause clauses provision provisions section happen happened evolve evolved "
        "move moved shift shifted"
    )
)
"""Words of asking about a change, not of its subject (stemmed)."""


def _name(document: DocumentInfo) -> str:
    return f"{document.title} {Path(document.path).name.replace('_', ' ')}"


def _subject(task: str, documents: Sequence[DocumentInfo]) -> str:
    """The task's subject: its content words in order, without years, the words that every
    document's name shares ("agreement") and the words of asking about change."""
    shared = set.intersection(*(set(terms(_name(d))) for d in documents))
    words: list[str] = []
    for word in _WORD.findall(task):
        stems = terms(word)
        if stems and not stems & shared and not stems <= _ASKING:
            words.append(word)
    return " ".join(words)


def version_plan(
    task: str, documents: Sequence[DocumentInfo], *, max_steps: int = 8
) -> Plan | None:
    """The per-version plan for ``task``, or ``None`` when the task does not name two or
    more versions that each match exactly one of ``documents`` (or the plan would exceed
    ``max_steps``)."""
    if len(documents) < 2:
        return None
    years = distinguishing_years(_name(d) for d in documents)
    named = [y for y in dict.fromkeys(_YEAR.findall(task)) if y in years]
    if len(named) < 2 or len(named) + 1 > max_steps:
        return None
    versions: list[tuple[str, DocumentInfo]] = []
    for year in named:
        matching = [d for d in documents if year in _YEAR.findall(_name(d).replace("_", " "))]
        if len(matching) != 1:
            return None
        versions.append((year, matching[0]))
    subject = _subject(task, documents)
    if not subject:
        return None
    steps = [
        Step(
            id=f"v{year}",
            kind="answer",
            instruction=f"What does the {year} version state about the {subject}?",
            queries=[subject],
            filters=SearchFilter(document_ids=[doc.id]),
            expected_output=f"the {subject} in the {year} version, each value with what it "
            "applies to",
        )
        for year, doc in versions
    ]
    years_text = ", ".join(named[:-1]) + f" and {named[-1]}"
    steps.append(
        Step(
            id="compare",
            kind="compare",
            instruction=f"Compare the {subject} of the {years_text} versions: give each "
            "version's value with its source, then what changed and what stayed the same.",
            depends_on=[s.id for s in steps],
            expected_output="each version's value, and the change",
        )
    )
    return Plan(
        steps=steps,
        rationale=f"The task names versions by year ({years_text}): read each on the "
        "subject, then compare (written without a planner call).",
    )
