"""Plans: a DAG of steps, written by the planner or declared in Python.

A plan is checked before anything runs (:meth:`Plan.problems`): ids unique, dependencies
known, no cycle, exactly one final step, size within budget, document filters naming
documents that exist. The same check guards the planner's output (an invalid plan goes back
to the planner with the problems) and plans users declare themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._derived import DerivedModel
from .documents.model import DocumentInfo
from .errors import PlanError
from .retrieval import SearchFilter

__all__ = ["STEP_KINDS", "Plan", "Step", "StepKind"]

StepKind = Literal["answer", "extract", "compare", "summarize", "synthesize"]
"""What a step does:

* ``answer``: retrieve and answer a focused question with cited evidence;
* ``extract``: fill a schema from the evidence (each field cited);
* ``compare``: set documents side by side on an aspect, with citations for each;
* ``summarize``: condense evidence or earlier results;
* ``synthesize``: combine earlier steps into the final, cited output.
"""

_STEP_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")

STEP_KINDS: tuple[StepKind, ...] = ("answer", "extract", "compare", "summarize", "synthesize")


class Step(BaseModel):
    """One unit of work in a plan."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: StepKind = "answer"
    instruction: str = Field(min_length=1)
    """What the step must do, in one or two sentences."""
    depends_on: list[str] = Field(default_factory=list)
    """Steps whose results this step needs; it starts when they finish and sees them."""
    queries: list[str] = Field(default_factory=list)
    """Retrieval queries; none means the step works from its dependencies alone."""
    filters: SearchFilter | None = None
    """Restrict retrieval, e.g. to one document or a page range."""
    k: int = Field(default=6, ge=1, le=50)
    """Chunks retrieved per query."""
    expected_output: str = ""
    """What the step must produce (shown to the model and to the judge)."""

    @property
    def document_ids(self) -> list[str]:
        return list(self.filters.document_ids or []) if self.filters else []


class Plan(DerivedModel):
    """A DAG of steps. The last step in topological order that nothing depends on is the
    final step: its output is the run's output."""

    model_config = ConfigDict(frozen=True)

    steps: list[Step] = Field(min_length=1)
    rationale: str = ""
    """Why the planner chose this decomposition (recorded, never shown to the judge)."""

    @model_validator(mode="after")
    def _check_structure(self) -> Plan:
        if self._structure_problems:
            raise PlanError(self._structure_problems)
        return self

    @cached_property
    def _structure_problems(self) -> list[str]:
        # pydantic runs an "after" validator again whenever a validated plan is passed to a
        # model (events, run specs, results): a plan is immutable, so it is checked once
        # (a copy with other steps is checked again, see DerivedModel).
        return structural_problems(self.steps)

    @classmethod
    def single(cls, instruction: str, *, queries: Sequence[str] = (), **step: Any) -> Plan:
        """A one-step plan (retrieve with ``queries``, answer ``instruction``)."""
        return cls(
            steps=[
                Step(
                    id="answer",
                    instruction=instruction,
                    queries=list(queries or [instruction]),
                    **step,
                )
            ]
        )

    # A plan is immutable, so its index, order and final step are computed once.
    @cached_property
    def _index(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def step(self, step_id: str) -> Step:
        return self._index[step_id]

    @cached_property
    def final(self) -> Step:
        """The step whose output is the run's output."""
        needed = {d for s in self.steps for d in s.depends_on}
        sinks = [s for s in self.topological() if s.id not in needed]
        return sinks[-1]

    def topological(self) -> list[Step]:
        """Steps in an order where each comes after its dependencies (stable)."""
        return list(self._order)

    @cached_property
    def _order(self) -> tuple[Step, ...]:
        waiting = {s.id: len(set(s.depends_on)) for s in self.steps}
        users: dict[str, list[str]] = {}
        for s in self.steps:
            for dep in set(s.depends_on):
                users.setdefault(dep, []).append(s.id)
        position = {s.id: i for i, s in enumerate(self.steps)}
        ready = [s.id for s in self.steps if waiting[s.id] == 0]
        order: list[Step] = []
        while ready:
            ready.sort(key=position.__getitem__)  # stable: declaration order among peers
            batch, ready = ready, []
            for sid in batch:
                order.append(self._index[sid])
                for user in users.get(sid, ()):
                    waiting[user] -= 1
                    if waiting[user] == 0:
                        ready.append(user)
        return tuple(order)

    def dependants(self, step_ids: Iterable[str]) -> set[str]:
        """Every step that depends, directly or not, on one of ``step_ids``."""
        users: dict[str, list[str]] = {}
        for s in self.steps:
            for dep in s.depends_on:
                users.setdefault(dep, []).append(s.id)
        out: set[str] = set()
        frontier = list(step_ids)
        while frontier:
            for user in users.get(frontier.pop(), ()):
                if user not in out:
                    out.add(user)
                    frontier.append(user)
        return out

    def problems(
        self,
        *,
        document_ids: Iterable[str] | None = None,
        max_steps: int | None = None,
        documents: Sequence[DocumentInfo] | None = None,
    ) -> list[str]:
        """What makes the plan unusable for this corpus and budget (empty if none).

        Args:
            document_ids: The corpus's documents, to check document filters.
            max_steps: The budget's largest plan.
            documents: The corpus's documents with their page counts: checks document
                filters and page ranges (and stands for ``document_ids``).
        """
        # A Plan is valid as a graph by construction: only the corpus and budget are left.
        return _fit_problems(
            self.steps, document_ids=document_ids, max_steps=max_steps, documents=documents
        )


def structural_problems(steps: Sequence[Step]) -> list[str]:
    """Problems of the graph itself: duplicate or unknown ids, cycles, several final steps."""
    problems: list[str] = []
    ids = [s.id for s in steps]
    seen: set[str] = set()
    for step_id in ids:
        if not _STEP_ID.fullmatch(step_id):
            problems.append(f"step id {step_id!r} must be 1-40 letters, digits, '_', '.' or '-'")
        if step_id in seen:
            problems.append(f"step id {step_id!r} is used twice")
        seen.add(step_id)
    for s in steps:
        for dep in s.depends_on:
            if dep not in seen:
                problems.append(f"step {s.id!r} depends on unknown step {dep!r}")
            elif dep == s.id:
                problems.append(f"step {s.id!r} depends on itself")
    if problems:
        return problems
    # Kahn's algorithm: whatever cannot be ordered lies on a cycle.
    waiting = {s.id: len(set(s.depends_on)) for s in steps}
    users: dict[str, list[str]] = {}
    for s in steps:
        for dep in set(s.depends_on):
            users.setdefault(dep, []).append(s.id)
    ready = [sid for sid, n in waiting.items() if n == 0]
    while ready:
        for user in users.get(ready.pop(), ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    cyclic = sorted(sid for sid, n in waiting.items() if n > 0)
    if cyclic:
        problems.append(f"steps {cyclic} form a dependency cycle")
        return problems
    needed = {d for s in steps for d in s.depends_on}
    sinks = [s.id for s in steps if s.id not in needed]
    if len(sinks) > 1:
        problems.append(
            f"the plan must end in exactly one final step, but {sinks} have no dependant; "
            "add a final synthesize step that depends on them"
        )
    return problems


def plan_problems(
    steps: Sequence[Step],
    *,
    document_ids: Iterable[str] | None = None,
    max_steps: int | None = None,
    documents: Sequence[DocumentInfo] | None = None,
) -> list[str]:
    """Structural problems plus those relative to a corpus and a budget (see
    :meth:`Plan.problems`)."""
    return structural_problems(steps) + _fit_problems(
        steps, document_ids=document_ids, max_steps=max_steps, documents=documents
    )


def _fit_problems(
    steps: Sequence[Step],
    *,
    document_ids: Iterable[str] | None,
    max_steps: int | None,
    documents: Sequence[DocumentInfo] | None,
) -> list[str]:
    """Problems relative to a corpus and a budget, for steps whose graph is sound."""
    problems: list[str] = []
    if max_steps is not None and len(steps) > max_steps:
        problems.append(f"the plan has {len(steps)} steps; the budget allows {max_steps}")
    if documents is not None and document_ids is None:
        document_ids = [d.id for d in documents]
    known = set(document_ids) if document_ids is not None else None
    for s in steps:
        if known is not None:
            unknown = [d for d in s.document_ids if d not in known]
            if unknown:
                problems.append(f"step {s.id!r} filters on unknown document(s) {unknown}")
        if s.filters and s.filters.page_from and s.filters.page_to:
            if s.filters.page_from > s.filters.page_to:
                problems.append(f"step {s.id!r} has page_from after page_to")
        if documents is not None:
            problems += _page_problems(s, documents)
        if not s.queries and not s.depends_on:
            problems.append(
                f"step {s.id!r} has neither retrieval queries nor dependencies: "
                "it would have nothing to work from"
            )
    return problems


def _page_problems(step: Step, documents: Sequence[DocumentInfo]) -> list[str]:
    """A page range must lie within each document it filters on (without a document
    filter: within the longest document), or the step would retrieve nothing."""
    f = step.filters
    if f is None or (f.page_from is None and f.page_to is None):
        return []
    last = max(f.page_from or 1, f.page_to or 1)
    pages = f"{f.page_from or 1}-{f.page_to if f.page_to is not None else 'end'}"
    if f.document_ids:
        named = [d for d in documents if d.id in set(f.document_ids)]
        return [
            f"step {step.id!r} reads pages {pages} of {d.title or d.id!r}, which has "
            f"{d.pages} page(s)"
            for d in named
            if last > d.pages
        ]
    longest = max((d.pages for d in documents), default=0)
    if documents and last > longest:
        return [
            f"step {step.id!r} reads pages {pages}, but the longest document has {longest} page(s)"
        ]
    return []
