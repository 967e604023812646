"""The planner: task + corpus + requirements -> a validated :class:`~maestro_lite.plan.Plan`.

The model writes a draft under a JSON schema built for this corpus: documents are referred to
by short handles (``D1``, ``D2``...) declared as an ``enum``, so a grammar-constrained model
cannot name a document that does not exist, and the framework maps handles back to ids. A
step may also read a page range of its document and say what it must produce (kept as the
step's expected output, which its model is shown). A draft that parses but is not a usable
plan (a cycle, an unknown dependency, too many steps, pages past a document's end) goes back
to the model with the problems, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from ._dynamic import list_of, literal_of
from .budget import Budget
from .documents.model import DocumentInfo
from .errors import PlanError
from .models.base import ChatModel, Message
from .models.generate import Attempt, RetryPolicy, UsageMeter, generate
from .plan import STEP_KINDS, Plan, Step, StepKind, plan_problems
from .requirements import Requirement
from .result import StepResult
from .retrieval import SearchFilter
from .untrusted import UNTRUSTED_RULE, mark_untrusted, one_line

__all__ = ["Planner"]

_SYSTEM = (
    """You plan research over a document collection. Break the task into a few focused \
steps that a careful analyst would take. Step kinds:
- answer: retrieve evidence and answer one focused sub-question;
- extract: pull specific fields or figures from the evidence;
- compare: set documents side by side on one aspect;
- summarize: condense evidence or earlier results;
- synthesize: the FINAL step; it depends on the earlier steps and writes the cited result.
Rules:
- Each answer/extract/compare/summarize step needs 1-3 short search queries.
- To read one document only, list its handle in `documents` (e.g. ["D2"]). To compare two \
documents on an aspect, make one step per document, then a compare or synthesize step.
- To read only part of a long document, also give `page_from` and `page_to` (pages of that \
document, inclusive); leave them null to read every page.
- `expected_output` says in a few words what the step must produce.
- Use ids s1, s2, s3... `depends_on` lists ids of earlier steps only.
- End with exactly one synthesize step that depends on every step not used by another step.
- Use as few steps as the task needs.
- """
    + UNTRUSTED_RULE
)

_EXAMPLE = """Example for "How did the notice period change between the 2023 and 2025 \
agreements?" with D1 = 2023 agreement, D2 = 2025 agreement:
{"rationale": "Read the notice clause of each version, then compare.", "steps": [
 {"id": "s1", "kind": "answer", "instruction": "Find the notice period in the 2023 \
agreement.", "depends_on": [], "queries": ["notice period termination"], "documents": ["D1"], \
"expected_output": "the notice period in days"},
 {"id": "s2", "kind": "answer", "instruction": "Find the notice period in the 2025 \
agreement.", "depends_on": [], "queries": ["notice period termination"], "documents": ["D2"], \
"expected_output": "the notice period in days"},
 {"id": "s3", "kind": "synthesize", "instruction": "State both notice periods and how it \
changed.", "depends_on": ["s1", "s2"], "queries": [], "documents": [], "expected_output": "both \
periods and the change"}]}"""


class _PlanDraftBase(BaseModel):
    rationale: str = Field(max_length=400, description="One or two sentences: why these steps")


def _draft_model(handles: Sequence[str], max_steps: int) -> type[BaseModel]:
    """The schema the planner fills: document handles are an enum of this corpus."""
    doc_type: Any = list_of(literal_of(handles)) if handles else list[str]
    step_model = create_model(
        "PlannedStep",
        id=(str, Field(max_length=40, description="s1, s2, ...")),
        kind=(literal_of(STEP_KINDS), ...),
        instruction=(str, Field(max_length=300, description="What this step must find or produce")),
        depends_on=(
            list[Annotated[str, Field(max_length=40)]],
            Field(max_length=16, description="ids of earlier steps this step needs"),
        ),
        queries=(
            list[Annotated[str, Field(max_length=200)]],
            Field(max_length=3, description="1-3 search queries; [] for synthesize"),
        ),
        documents=(
            doc_type,
            Field(description="Restrict retrieval to these documents; [] for all"),
        ),
        page_from=(
            int | None,
            Field(default=None, ge=1, description="First page to read; null: from the start"),
        ),
        page_to=(
            int | None,
            Field(default=None, ge=1, description="Last page to read; null: to the end"),
        ),
        expected_output=(
            str,
            Field(default="", max_length=200, description="What this step must produce"),
        ),
    )
    return create_model(
        "PlanDraft",
        __base__=_PlanDraftBase,
        steps=(list_of(step_model), Field(min_length=1, max_length=max_steps)),
    )


class Planner:
    """Writes plans with a chat model.

    Args:
        model: The model that plans (often the strongest one available).
        retry: Backoff for transient model errors.
        max_reasks: Re-asks when a draft does not match the schema.
    """

    def __init__(
        self, model: ChatModel, *, retry: RetryPolicy | None = None, max_reasks: int = 2
    ) -> None:
        self.model = model
        self.retry = retry
        self.max_reasks = max_reasks

    async def plan(
        self,
        task: str,
        *,
        documents: Sequence[DocumentInfo],
        requirements: Sequence[Requirement] = (),
        budget: Budget,
        meter: UsageMeter,
        on_attempt: Callable[[Attempt], None] | None = None,
        on_rejected: Callable[[str, int], None] | None = None,
        replan: tuple[Plan, dict[str, StepResult], str, Sequence[str]] | None = None,
    ) -> Plan:
        """A valid plan for ``task``.

        Args:
            replan: ``(previous plan, its step results, feedback, ids of steps to keep)``
                to revise a plan after failed checks; kept steps are reused as they are.

        Raises:
            PlanError: No valid plan within ``budget.max_plan_attempts`` drafts.
        """
        handles = {f"D{i}": doc for i, doc in enumerate(documents, start=1)}
        kept: dict[str, Step] = {}
        if replan is not None:
            previous, _, _, keep = replan
            kept = {s.id: s for s in previous.steps if s.id in set(keep)}
        max_new = max(1, budget.max_steps - len(kept))
        draft_type = _draft_model(list(handles), max_new)
        messages = [
            Message.system(_SYSTEM + "\n\n" + _EXAMPLE),
            Message.user(self._prompt(task, handles, requirements, max_new, replan)),
        ]
        problems: list[str] = []
        for attempt in range(1, budget.max_plan_attempts + 1):
            completion = await generate(
                self.model,
                messages,
                output_type=draft_type,
                max_reasks=self.max_reasks,
                retry=self.retry,
                meter=meter,
                on_attempt=on_attempt,
                purpose="plan",
            )
            draft = completion.output
            steps = self._steps(draft, handles, kept)
            problems = plan_problems(steps, documents=documents, max_steps=budget.max_steps)
            if not problems:
                return Plan(steps=steps, rationale=getattr(draft, "rationale", ""))
            text = "\n".join(f"- {p}" for p in problems)
            if on_rejected is not None:
                on_rejected(text, attempt)
            messages = [
                *messages,
                Message.assistant(completion.text),
                Message.user(f"That plan cannot be used:\n{text}\nReply with a corrected plan."),
            ]
        raise PlanError(problems)

    def _prompt(
        self,
        task: str,
        handles: dict[str, DocumentInfo],
        requirements: Sequence[Requirement],
        max_steps: int,
        replan: tuple[Plan, dict[str, StepResult], str, Sequence[str]] | None,
    ) -> str:
        lines = [f"Task: {task}", "", "Documents (handle: title, which is data):"]
        listing = [
            f"{handle}: {one_line(doc.title)} ({doc.pages} page(s), {doc.chunks} chunk(s))"
            for handle, doc in handles.items()
        ]
        if listing:
            lines.append(mark_untrusted("\n".join(listing), source="document titles"))
        else:
            lines.append("(none listed; search the whole collection)")
        if requirements:
            lines += ["", "The result must meet these requirements:"]
            lines += [f"- {r.description}" for r in requirements if r.scope == "final"]
        if replan is not None:
            previous, results, feedback, keep = replan
            lines += [
                "",
                "A previous plan ran; its result failed these checks:",
                feedback,
                "",
                "Steps that passed, which you may depend on by id (do not redefine):",
            ]
            for step_id in keep:
                result = results.get(step_id)
                answer = result.answer if result else ""
                instruction = one_line(previous.step(step_id).instruction)
                lines.append(f"- {step_id} ({instruction}): {one_line(answer, 300)}")
            first = _next_id({s.id for s in previous.steps})
            lines.append(
                f"Write NEW steps with new ids starting at {first} that fix the failures, "
                "ending with a synthesize step."
            )
        lines += ["", f"Write a plan of at most {max_steps} step(s)."]
        return "\n".join(lines)

    @staticmethod
    def _steps(
        draft: BaseModel, handles: dict[str, DocumentInfo], kept: dict[str, Step]
    ) -> list[Step]:
        raw: list[dict[str, Any]] = [s.model_dump() for s in getattr(draft, "steps", [])]
        steps: list[Step] = []
        for item in raw:
            docs = [handles[h].id for h in item.get("documents", []) if h in handles]
            kind: StepKind = item["kind"]
            queries = [q for q in item.get("queries", []) if q.strip()]
            pages = {k: item.get(k) for k in ("page_from", "page_to") if item.get(k)}
            filters = SearchFilter(document_ids=docs or None, **pages) if docs or pages else None
            steps.append(
                Step.model_construct(  # checked by plan_problems, not by the constructor
                    id=str(item["id"]).strip() or "s?",
                    kind=kind,
                    instruction=item["instruction"] or item["id"],
                    depends_on=list(dict.fromkeys(item.get("depends_on", []))),
                    queries=queries,
                    filters=filters,
                    k=6,
                    expected_output=str(item.get("expected_output") or "").strip(),
                )
            )
        steps = _rename_collisions(steps, kept)
        # Kept steps come first, unchanged, if the new steps use them.
        used = {d for s in steps for d in s.depends_on}
        reused = [s for sid, s in kept.items() if sid in used]
        return _with_final(reused + steps)


def _next_id(taken: set[str]) -> str:
    return next(f"s{n}" for n in range(1, 10_000) if f"s{n}" not in taken)


def _rename_collisions(steps: list[Step], kept: dict[str, Step]) -> list[Step]:
    """New steps that reuse a kept step's id get a fresh id (a small model's usual slip when
    revising a plan); references among the new steps follow, since a step the model defines
    itself is the one it means."""
    if not kept:
        return steps
    taken = set(kept) | {s.id for s in steps}
    renamed: dict[str, str] = {}
    for s in steps:
        if s.id in kept and s.id not in renamed:
            renamed[s.id] = new_id = _next_id(taken)
            taken.add(new_id)
    if not renamed:
        return steps
    return [
        s.model_copy(
            update={
                "id": renamed.get(s.id, s.id),
                "depends_on": [renamed.get(d, d) for d in s.depends_on],
            }
        )
        for s in steps
    ]


def _with_final(steps: list[Step]) -> list[Step]:
    """Add a synthesize step when a draft left several final steps: a repair the framework
    can make without asking the model again."""
    needed = {d for s in steps for d in s.depends_on}
    ids = {s.id for s in steps}
    sinks = [s.id for s in steps if s.id not in needed]
    if len(sinks) <= 1 or any(d not in ids for d in needed):
        return steps
    final_id = next(f"s{n}" for n in range(len(steps) + 1, 10_000) if f"s{n}" not in ids)
    return [
        *steps,
        Step(
            id=final_id,
            kind="synthesize",
            instruction="Combine the results of the earlier steps into the final answer.",
            depends_on=sinks,
        ),
    ]
