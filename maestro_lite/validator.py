"""The validator: checks a round's results and returns a report. It decides nothing.

Built-in checks always run, per step:

* the step finished (a failed or skipped step fails with its cause);
* every citation points at a chunk that was actually retrieved for the step (or cited by a
  step it depends on), and its quote is exactly the source text at its offsets (compared with
  the store's copy, whitespace-normalised);
* a step that had evidence makes at least one cited claim; extracted fields cite a source or
  say why they are missing;
* figures and dates are in the evidence their statement cites, and a statement naming a
  document by year cites it (:mod:`.grounding`);
* where the final step's evidence disagrees (:mod:`.conflicts`: two documents, one subject,
  different values), its answer states each side with its source and which prevails.

and on the final output: it is not empty, and it validates against the output type.

User requirements follow: programmatic ones run in Python; natural-language ones go to an LLM
judge in one call per scope, which sees the output and its cited evidence, not the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from .conflicts import unresolved
from .documents.model import Chunk
from .errors import BudgetExceeded, MaestroError, interrupts_run
from .events import Event, ModelAttempted
from .grounding import abstains, distinguishing_years, misattributed_years, ungrounded_figures
from .injection import injection_checks
from .models.base import ChatModel, Message
from .models.generate import Attempt, RetryPolicy, UsageMeter, generate
from .plan import Plan
from .requirements import CheckContext, Requirement, RequirementResult
from .result import Citation, StepResult, ValidationReport
from .retrieval import Retriever
from .tokens import count_tokens
from .untrusted import UNTRUSTED_RULE, mark_untrusted, one_line
from .versions import unstated

__all__ = ["JUDGE_SCORES", "Validator", "check_citations"]

Emit = Callable[[Event], None]

_NOT_JUDGED = "not judged: the budget is spent"

Verdict = Literal["met", "mostly met", "partly met", "not met"]
JUDGE_SCORES: dict[str, float] = {"met": 1.0, "mostly met": 0.75, "partly met": 0.4, "not met": 0.0}

_JUDGE_SYSTEM = (
    "You check whether an output meets requirements. Judge only from the output and the "
    "evidence shown; do not use outside knowledge. Be strict: 'met' only if the output clearly "
    "satisfies the requirement. Give a one-sentence reason before each verdict. " + UNTRUSTED_RULE
)


def _norm(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=4096)
def _normed_source(text: str) -> str:
    """:func:`_norm` of a chunk's text (cached: a chunk is cited by many steps)."""
    return _norm(text)


def check_citations(
    citations: Sequence[Citation],
    *,
    retrieved: set[str],
    sources: Mapping[str, Chunk],
    fallback: Mapping[str, Chunk] | None = None,
) -> list[str]:
    """Problems with ``citations``: chunks never retrieved, quotes not in the source text.

    Args:
        retrieved: Ids of the chunks the step actually saw.
        sources: The store's copy of the cited chunks, by id.
        fallback: Chunks to compare with where ``sources`` has none (what retrieval
            returned, for a corpus that cannot be read back).
    """
    problems: list[str] = []
    for c in citations:
        if c.chunk_id not in retrieved:
            problems.append(f"{c.evidence_id} cites chunk {c.chunk_id} that was never retrieved")
            continue
        chunk = sources.get(c.chunk_id)
        if chunk is None and fallback:
            chunk = fallback.get(c.chunk_id)
        if chunk is None:
            problems.append(f"{c.evidence_id}: chunk {c.chunk_id} is not in the store")
            continue
        span = chunk.text[c.start - chunk.start : c.end - chunk.start]
        quote = _norm(c.quote)
        if _norm(span) != quote or quote not in _normed_source(chunk.text):
            problems.append(
                f"{c.evidence_id}: quote {c.quote[:60]!r} is not the source text of "
                f"{chunk.title or chunk.document_id} page {c.page}"
            )
    return problems


class _VerdictBase(BaseModel):
    reason: str = Field(max_length=300, description="One sentence: why")
    verdict: Verdict


def _verdicts_model(requirement_ids: Sequence[str]) -> type[BaseModel]:
    fields: dict[str, Any] = dict.fromkeys(requirement_ids, (_VerdictBase, ...))
    return create_model("Verdicts", **fields)


class Validator:
    """Checks results against built-in checks and the user's requirements.

    Args:
        judge: The model judging natural-language requirements.
        retriever: The corpus, to compare quotes with the stored source text.
    """

    def __init__(
        self,
        judge: ChatModel,
        retriever: Retriever | None,
        *,
        retry: RetryPolicy | None = None,
        max_reasks: int = 2,
        check_figures: bool = True,
        check_conflicts: bool = True,
    ) -> None:
        self.judge = judge
        self.retriever = retriever
        self.retry = retry
        self.max_reasks = max_reasks
        self.check_figures = check_figures
        self.check_conflicts = check_conflicts

    async def validate(
        self,
        *,
        task: str,
        plan: Plan,
        results: Mapping[str, StepResult],
        requirements: Sequence[Requirement],
        output: Any,
        output_type: type[BaseModel] | None,
        round: int,
        run_id: str,
        meter: UsageMeter,
        emit: Emit,
    ) -> tuple[ValidationReport, BudgetExceeded | None]:
        """Every check for one round, and the limit that stopped the judge, if one did (then
        the requirements it could not judge are marked unmet, "not judged")."""
        checks: list[RequirementResult] = []
        sources = await self._sources(results.values())
        years = await self._distinguishing_years() if self.check_figures else set()
        for step in plan.steps:
            result = results.get(step.id)
            if result is None:
                continue
            checks += self._step_checks(plan, result, results, sources, task, years)
            checks += injection_checks(result)  # documents that try to instruct the model
        final = results.get(plan.final.id)
        text = _output_text(output)
        claims = final.claims if final else []
        citations = final.citations if final else []
        checks.append(
            _builtin(
                "output",
                "the output is not empty",
                bool(text.strip()),
                "empty output" if not text.strip() else "ok",
            )
        )
        if output_type is not None:
            ok, reason = _validates(output, output_type)
            checks.append(
                _builtin(
                    "output-schema", f"the output is a valid {output_type.__name__}", ok, reason
                )
            )
        final_reqs = [r for r in requirements if r.scope == "final"]
        ctx = CheckContext(task=task, output=output, text=text, claims=claims, citations=citations)
        checks += [self._programmatic(r, ctx) for r in final_reqs if r.kind != "judge"]
        step_reqs = [r for r in requirements if r.scope == "steps" and r.kind != "judge"]
        for step_result in results.values():
            if step_result.status != "done" or not step_reqs:
                continue
            sctx = CheckContext(
                task=task,
                output=step_result.data or step_result.answer,
                text=step_result.answer,
                claims=step_result.claims,
                citations=step_result.citations,
                step_id=step_result.step_id,
            )
            checks += [self._programmatic(r, sctx, step_result.step_id) for r in step_reqs]
        judged = [r for r in final_reqs if r.kind == "judge"]
        step_judged = [r for r in requirements if r.scope == "steps" and r.kind == "judge"]
        judged_steps = [s for s in results.values() if s.status == "done"] if step_judged else []
        try:
            if judged and text.strip():
                checks += await self._judge(
                    task,
                    text,
                    citations,
                    judged,
                    steps=list(results.values()),
                    run_id=run_id,
                    meter=meter,
                    emit=emit,
                    purpose="judge",
                )
            elif judged:
                checks += [_result(r, 0.0, "nothing to judge: the output is empty") for r in judged]
            for step_result in judged_steps:
                checks += await self._judge(
                    task,
                    step_result.answer,
                    step_result.citations,
                    step_judged,
                    steps=[step_result],
                    run_id=run_id,
                    meter=meter,
                    emit=emit,
                    purpose=f"judge:{step_result.step_id}",
                    step_id=step_result.step_id,
                )
        except BudgetExceeded as exc:
            # Whatever the budget left unjudged is reported unmet, with why: final-scope
            # requirements and, per step, the step-scope ones.
            done = {c.id for c in checks}
            unjudged = [_result(r, 0.0, _NOT_JUDGED) for r in judged]
            unjudged += [
                _result(r, 0.0, _NOT_JUDGED, s.step_id) for s in judged_steps for r in step_judged
            ]
            checks += [c for c in unjudged if c.id not in done]
            return ValidationReport(round=round, results=checks), exc
        return ValidationReport(round=round, results=checks), None

    async def _distinguishing_years(self) -> set[str]:
        if self.retriever is None:
            return set()
        documents = await self.retriever.documents()
        return distinguishing_years(f"{d.title} {d.path.rsplit('/', 1)[-1]}" for d in documents)

    async def _sources(self, results: Any) -> dict[str, Chunk]:
        """The store's copy of every cited chunk (falling back to what retrieval returned)."""
        cited = {c.chunk_id for r in results for c in r.citations}
        sources: dict[str, Chunk] = {}
        if cited and self.retriever is not None:
            for chunk in await self.retriever.get_chunks(sorted(cited)):
                sources[chunk.id] = chunk
        return sources

    def _step_checks(
        self,
        plan: Plan,
        result: StepResult,
        results: Mapping[str, StepResult],
        sources: Mapping[str, Chunk],
        task: str,
        years: set[str],
    ) -> list[RequirementResult]:
        sid = result.step_id
        if result.status != "done":
            return [
                _builtin(
                    f"{sid}.completed",
                    "the step completed",
                    False,
                    result.error or result.status,
                    step_id=sid,
                )
            ]
        out: list[RequirementResult] = []
        step = plan.step(sid)
        retrieved = {h.chunk.id for h in result.retrieved}
        for dep in step.depends_on:
            if dep in results:
                retrieved |= {c.chunk_id for c in results[dep].citations}
                if result.changes:  # a comparison is offered each side its dependencies read
                    retrieved |= {h.chunk.id for h in results[dep].retrieved}
        # The store's copy first; what retrieval returned only where the store has none.
        seen = {hit.chunk.id: hit.chunk for hit in result.retrieved}
        if self.retriever is None:
            for dep in step.depends_on:
                for hit in results[dep].retrieved if dep in results else []:
                    seen.setdefault(hit.chunk.id, hit.chunk)
        problems = check_citations(
            result.citations, retrieved=retrieved, sources=sources, fallback=seen
        )
        out.append(
            _builtin(
                f"{sid}.citations",
                "citations resolve to retrieved source text",
                not problems,
                "; ".join(problems[:3]) or f"{len(result.citations)} citation(s) verified",
                step_id=sid,
            )
        )
        if result.evidence_ids:
            if result.data is not None:
                bare = [c.text.split(":")[0] for c in result.claims if not c.citations]
                ok = not bare
                reason = (
                    ("fields without a cited source: " + ", ".join(bare))
                    if bare
                    else f"{len(result.claims)} field(s) cited, {len(result.missing)} missing with "
                    "a reason"
                )
            else:
                cited = [c for c in result.claims if c.citations]
                # Saying the evidence does not hold the answer, and claiming nothing, is
                # supported: that is the answer about something absent.
                ok = bool(cited) or (not result.claims and abstains(result.answer))
                reason = (
                    f"{len(cited)} of {len(result.claims)} claim(s) cited"
                    if cited
                    else "the answer says the evidence does not hold it; nothing to cite"
                    if ok
                    else "the step makes no claim that cites the evidence"
                )
            out.append(
                _builtin(
                    f"{sid}.supported",
                    "the answer is supported by cited evidence",
                    ok,
                    reason,
                    step_id=sid,
                )
            )
            if self.check_figures:
                out += self._grounding_checks(result, step.instruction, task, years)
            if self.check_conflicts and result.conflicts and sid == plan.final.id:
                out.append(_conflicts_check(result))
            if self.check_conflicts and result.changes:
                out.append(_changes_check(result))
        return out

    @staticmethod
    def _grounding_checks(
        result: StepResult, instruction: str, task: str, years: set[str]
    ) -> list[RequirementResult]:
        """Figures must be in the citations of the statement that makes them (the answer: in
        any of the step's citations), and a statement naming a document by year must cite
        a document of that year."""
        sid = result.step_id

        def name(c: Citation) -> str:
            # Titles and file names count: "the 2023 agreement" names a document.
            return f"{c.title} {c.path.rsplit('/', 1)[-1]}"

        statements = [(result.answer, result.citations)]
        statements += [(c.text, c.citations) for c in result.claims]
        loose: list[str] = []
        misattributed: list[str] = []
        for text, citations in statements:
            # Lazily: the sources are read only for a statement that states a figure.
            allowed = chain((c.quote for c in citations), map(name, citations), (task, instruction))
            loose += [f for f in ungrounded_figures(text, allowed) if f not in loose]
            if not years:
                continue  # no document is named by a year: nothing to misattribute
            for year in misattributed_years(text, map(name, citations), years):
                note = f"'{text[:60]}' names {year} but cites no {year} document"
                if note not in misattributed:
                    misattributed.append(note)
        out = [
            _builtin(
                f"{sid}.figures",
                "every figure appears in the evidence its statement cites",
                not loose,
                "figures not in the evidence their statement cites: "
                + ", ".join(loose[:6])
                + ". State only figures that the cited sentences contain, and cite them"
                if loose
                else "all figures grounded",
                step_id=sid,
            )
        ]
        if years:
            out.append(
                _builtin(
                    f"{sid}.attribution",
                    "statements that name a document cite it",
                    not misattributed,
                    "; ".join(misattributed[:3])
                    + ". Attribute each fact to the document whose sentence you cite"
                    if misattributed
                    else "named documents are cited",
                    step_id=sid,
                )
            )
        return out

    @staticmethod
    def _programmatic(
        req: Requirement, ctx: CheckContext, step_id: str | None = None
    ) -> RequirementResult:
        outcome = req.evaluate(ctx)
        return RequirementResult(
            id=req.id if step_id is None else f"{step_id}.{req.id}",
            description=req.description,
            kind=req.kind,
            score=outcome.score,
            passed=outcome.score >= req.threshold,
            reason=outcome.reason,
            step_id=step_id,
        )

    async def _judge(
        self,
        task: str,
        text: str,
        citations: Sequence[Citation],
        requirements: Sequence[Requirement],
        *,
        steps: Sequence[StepResult] = (),
        run_id: str,
        meter: UsageMeter,
        emit: Emit,
        purpose: str,
        step_id: str | None = None,
    ) -> list[RequirementResult]:
        """One judge call for ``requirements`` on ``text``. A requirement judged against
        gathered evidence also sees what ``steps`` retrieved and ``citations`` leave out
        (collected only then)."""
        evidence = (
            "\n".join(
                f"[{i}] {one_line(c.title or c.document_id)}, page {c.page}: {_norm(c.quote)}"
                for i, c in enumerate(citations, start=1)
            )
            or "(the output cites no evidence)"
        )
        wide = [r for r in requirements if r.evidence == "gathered"]
        listing = "\n".join(
            f"{r.id}: {r.description}" + (" [judge against all evidence]" if r in wide else "")
            for r in requirements
        )
        prompt = (
            f"Task: {task}\n\nOutput:\n{mark_untrusted(text, source='output')}\n\nEvidence "
            f"cited by the output:\n{mark_untrusted(evidence, source='evidence')}"
        )
        if wide:
            prompt += (
                "\n\nOther evidence the run retrieved, which the output does not cite (only "
                "for requirements marked [judge against all evidence]):\n"
                + mark_untrusted(
                    _render_uncited(_uncited(steps, citations)) or "(none)", source="uncited"
                )
            )
        messages = [
            Message.system(_JUDGE_SYSTEM),
            Message.user(f"{prompt}\n\nRequirements:\n{listing}"),
        ]

        def on_attempt(a: Attempt) -> None:
            emit(ModelAttempted.of(run_id, purpose, a))

        try:
            completion = await generate(
                self.judge,
                messages,
                output_type=_verdicts_model([r.id for r in requirements]),
                retry=self.retry,
                max_reasks=self.max_reasks,
                meter=meter,
                on_attempt=on_attempt,
                purpose=purpose,
            )
        except BudgetExceeded:
            raise
        except MaestroError as exc:
            if interrupts_run(exc):  # the judge's endpoint is down: the run stops, resumable
                raise
            return [_result(r, 0.0, f"the judge failed: {exc}", step_id) for r in requirements]
        out: list[RequirementResult] = []
        for r in requirements:
            verdict = getattr(completion.output, r.id)
            score = JUDGE_SCORES[verdict.verdict]
            out.append(_result(r, score, f"{verdict.verdict}: {verdict.reason}", step_id))
        return out


_UNCITED_TOKENS = 1500
"""Most tokens of uncited evidence shown to the judge (best-ranked chunks first)."""


def _uncited(results: Iterable[StepResult], citations: Sequence[Citation]) -> list[Chunk]:
    """Chunks the steps retrieved that ``citations`` do not cite, best-ranked first, once."""
    cited = {c.chunk_id for c in citations}
    hits = sorted(
        (h for r in results for h in r.retrieved if h.chunk.id not in cited),
        key=lambda h: h.rank,
    )
    return list({h.chunk.id: h.chunk for h in hits}.values())


def _render_uncited(chunks: Sequence[Chunk]) -> str:
    lines: list[str] = []
    spent = 0
    for i, chunk in enumerate(chunks, start=1):
        name = one_line(chunk.title or chunk.document_id)
        line = f"[u{i}] {name}, page {chunk.page}: {_norm(chunk.text)}"
        spent += count_tokens(line)
        if spent > _UNCITED_TOKENS:
            break
        lines.append(line)
    return "\n".join(lines)


def _conflicts_check(result: StepResult) -> RequirementResult:
    """Where the final step's evidence disagrees, its answer tells each side with its
    source (and, where one prevails, says which): checked in Python, not by the judge."""
    # The answer itself, not only its claims: a reader of the answer must see both sides.
    problems = unresolved(
        result.conflicts,
        result.answer,
        {c.document_id for c in result.citations},
    )
    return _builtin(
        f"{result.step_id}.conflicts",
        "where sources disagree, the answer states each side with its source and which prevails",
        not problems,
        "; ".join(problems[:2]) or f"{len(result.conflicts)} disagreement(s) stated with sources",
        step_id=result.step_id,
    )


def _changes_check(result: StepResult) -> RequirementResult:
    """A comparison states each changed value of both documents (:mod:`.versions`)."""
    problems = unstated(result.changes, result.answer)
    changed = sum(c.kind != "unchanged" for c in result.changes)
    return _builtin(
        f"{result.step_id}.changes",
        "the comparison states what changed, with both documents' values",
        not problems,
        "; ".join(problems[:3])
        + ". Give each document's value for each change, with its evidence id"
        if problems
        else f"{changed} change(s) of {len(result.changes)} aligned clause(s) stated",
        step_id=result.step_id,
    )


def _result(
    req: Requirement, score: float, reason: str, step_id: str | None = None
) -> RequirementResult:
    return RequirementResult(
        id=req.id if step_id is None else f"{step_id}.{req.id}",
        description=req.description,
        kind=req.kind,
        score=score,
        passed=score >= req.threshold,
        reason=reason,
        step_id=step_id,
    )


def _builtin(
    check_id: str, description: str, ok: bool, reason: str, step_id: str | None = None
) -> RequirementResult:
    return RequirementResult(
        id=check_id,
        description=description,
        kind="builtin",
        score=1.0 if ok else 0.0,
        passed=ok,
        reason=reason,
        step_id=step_id,
    )


def _output_text(output: Any) -> str:
    if output is None:
        return ""
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    return str(output)


def _validates(output: Any, output_type: type[BaseModel]) -> tuple[bool, str]:
    try:
        if isinstance(output, output_type):
            output_type.model_validate(output.model_dump())
        else:
            output_type.model_validate_json(_output_text(output))
    except ValidationError as exc:
        return False, f"{exc.error_count()} error(s): {exc.errors()[0]['msg']}"
    return True, "valid"
