"""The executor: runs a plan's steps as their dependencies finish, in parallel within a limit.

Per step: retrieval with the step's queries and filters, evidence packed into the model's
window (the dependencies' cited evidence first, then whole retrieved chunks, most relevant
first, with the output schema counted too), one structured LLM call whose evidence ids are an
enum, and a :class:`~maestro_lite.result.StepResult` with citations resolved to exact spans.
A failed step records its cause; steps that depend on it are skipped, never run on garbage.
A step that outlasts its timeout fails like any other. A model endpoint that stays down
through every retry is not the step's fault: that error stops the execution (steps in
flight are cancelled) and the orchestrator stops the run, resumable.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from pydantic import BaseModel

from .changes import Change
from .conflicts import Conflict, Statement, conflict_note, find_conflicts, to_complete, told
from .documents.model import Chunk
from .errors import BudgetExceeded, MaestroError, interrupts_run
from .events import (
    Event,
    ModelAttempted,
    StepFailed,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from .evidence import EvidencePool
from .focus import focused, value_note
from .models.base import ChatModel, ModelSettings
from .models.generate import Attempt, RetryPolicy, UsageMeter, generate
from .plan import Plan, Step
from .result import Claim, StepResult
from .retrieval import Retriever, SearchHit, SearchMode
from .step_io import build_messages, output_model, pack_prompt, prompt_head, read_output
from .usage import Usage
from .versions import change_note, counterparts, diff

__all__ = ["Execution", "Executor"]

Emit = Callable[[Event], None]


@dataclass
class Execution:
    """The results of one execution of a plan."""

    results: dict[str, StepResult]
    budget_error: BudgetExceeded | None = None
    """Set when a limit stopped the execution; later steps were skipped."""


def _now() -> datetime:
    return datetime.now(UTC)


def _interleave(ranked: Sequence[Sequence[SearchHit]]) -> list[SearchHit]:
    """Merge the hit lists of several queries fairly: first hits first, no duplicates."""
    out: list[SearchHit] = []
    seen: set[str] = set()
    for position in range(max((len(r) for r in ranked), default=0)):
        for hits in ranked:
            if position < len(hits) and hits[position].chunk.id not in seen:
                hit = hits[position]
                seen.add(hit.chunk.id)
                rank = len(out) + 1
                out.append(hit if hit.rank == rank else hit.model_copy(update={"rank": rank}))
    return out


async def _cancel_all(tasks: set[asyncio.Task[StepResult]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Executor:
    """Runs plans.

    Args:
        model: The model that answers steps.
        retriever: Where steps search; ``None`` for plans whose steps need no retrieval.
        concurrency: Most steps in flight at once.
        mode: Retrieval mode for step queries.
        output_tokens: Tokens reserved for each step's answer.
        retry: Backoff for transient model errors.
        max_reasks: Re-asks when an answer does not match its schema.
        fix_temperature: Sampling temperature when a step is re-run with feedback.
        step_timeout: Seconds a step's model call may take, retries included; a step that
            takes longer fails. ``None``: no limit.
        focus: Sentences kept per document in the retrieved evidence of an answering step
            that reads chosen documents, those that best match its question (see
            :mod:`.focus`); 0 keeps whole chunks.
    """

    def __init__(
        self,
        model: ChatModel,
        retriever: Retriever | None,
        *,
        concurrency: int = 4,
        mode: SearchMode = "hybrid",
        output_tokens: int = 1024,
        retry: RetryPolicy | None = None,
        max_reasks: int = 2,
        fix_temperature: float = 0.4,
        step_timeout: float | None = None,
        focus: int = 8,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.model = model
        self.retriever = retriever
        self.concurrency = concurrency
        self.mode: SearchMode = mode
        self.output_tokens = output_tokens
        self._plain_settings = ModelSettings(max_tokens=output_tokens)  # frozen: shared
        self.retry = retry
        self.max_reasks = max_reasks
        self.fix_temperature = fix_temperature
        self.step_timeout = step_timeout
        self.focus = focus

    async def execute(
        self,
        plan: Plan,
        *,
        task: str,
        run_id: str,
        meter: UsageMeter,
        emit: Emit,
        round: int = 1,
        reuse: Mapping[str, StepResult] | None = None,
        feedback: Mapping[str, str] | None = None,
        final_type: type[BaseModel] | None = None,
        data_types: Mapping[str, type[BaseModel]] | None = None,
    ) -> Execution:
        """Run ``plan`` and return every step's result.

        Args:
            reuse: Results to keep as they are (steps finished in an earlier round or run).
            feedback: Failure reasons per step id, for steps run again.
            final_type: Output type of the final step.
            data_types: Output types of ``extract`` steps, by step id.
        """
        reuse = dict(reuse or {})
        feedback = feedback or {}
        types = dict(data_types or {})
        if final_type is not None:
            types[plan.final.id] = final_type
        results: dict[str, StepResult] = {}
        exhausted: list[BudgetExceeded] = []
        # A ready-queue dispatcher: a step is started only once its dependencies are done,
        # and at most `concurrency` run at once. No task waits on another's completion, which
        # keeps per-step scheduling cost flat on large plans.
        steps = {s.id: s for s in plan.steps}
        waiting = {s.id: len(set(s.depends_on)) for s in plan.steps}
        users: dict[str, list[str]] = {}
        for s in plan.steps:
            for dep in set(s.depends_on):
                users.setdefault(dep, []).append(s.id)
        ready: deque[str] = deque(s.id for s in plan.steps if waiting[s.id] == 0)
        running: set[asyncio.Task[StepResult]] = set()
        known: dict[str, Chunk] = {}  # chunks seen so far, so none is read from the store twice

        def settle(step_id: str, result: StepResult) -> None:
            results[step_id] = result
            for user in users.get(step_id, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    ready.append(user)

        def decide(step: Step) -> StepResult | None:
            """The result of a step that needs no model call, or None if it must run."""
            if step.id in reuse and reuse[step.id].status == "done":
                return reuse[step.id]
            if exhausted:
                return self._skipped(step, round, "the budget is spent", emit, run_id)
            blocked = [d for d in step.depends_on if results[d].status != "done"]
            if blocked:
                reason = f"depends on {', '.join(blocked)}, which did not finish"
                return self._skipped(step, round, reason, emit, run_id)
            return None

        while ready or running:
            while ready and len(running) < self.concurrency:
                step = steps[ready.popleft()]
                immediate = decide(step)
                if immediate is not None:
                    settle(step.id, immediate)
                    continue
                job = asyncio.create_task(
                    self._run_step(
                        step,
                        task=task,
                        run_id=run_id,
                        meter=meter,
                        emit=emit,
                        round=round,
                        deps=[results[d] for d in step.depends_on],
                        feedback=feedback.get(step.id),
                        data_type=types.get(step.id),
                        exhausted=exhausted,
                        known=known,
                    ),
                    name=step.id,
                )
                running.add(job)
            if not running:
                continue
            try:
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # cancelled: no step may outlive its execution
                await _cancel_all(running)
                raise
            for done_task in finished:
                running.discard(done_task)
                if (error := done_task.exception()) is not None:
                    await _cancel_all(running)  # the run stops (see interrupts_run)
                    raise error
                settle(done_task.get_name(), done_task.result())
        ordered = {s.id: results[s.id] for s in plan.steps}
        return Execution(ordered, exhausted[0] if exhausted else None)

    @staticmethod
    def _skipped(step: Step, round: int, reason: str, emit: Emit, run_id: str) -> StepResult:
        result = StepResult(
            step_id=step.id, kind=step.kind, status="skipped", round=round, error=reason
        )
        emit(StepSkipped(run_id=run_id, step_id=step.id, round=round, reason=reason, result=result))
        return result

    async def _retrieve(self, step: Step) -> list[SearchHit]:
        if not step.queries:
            return []
        if self.retriever is None:
            raise MaestroError(
                f"step {step.id!r} has retrieval queries but the run has no corpus",
                hint="Pass corpus=... to run(), or remove the step's queries.",
            )
        retriever = self.retriever
        ranked = await asyncio.gather(
            *(
                retriever.search(q, k=step.k, filters=step.filters, mode=self.mode)
                for q in step.queries
            )
        )
        return _interleave(ranked)

    def _settings(self, feedback: str | None, round: int) -> ModelSettings:
        # A step re-run with feedback samples a little: at temperature 0 a small model tends
        # to repeat the answer that just failed, word for word. Seeding the sample by round
        # keeps fix rounds different from each other, yet an identical run reproducible
        # (and answerable from the response cache, which serves only seeded samples).
        if not feedback:
            return self._plain_settings
        return ModelSettings(
            max_tokens=self.output_tokens, temperature=self.fix_temperature, seed=round
        )

    async def _run_step(
        self,
        step: Step,
        *,
        task: str,
        run_id: str,
        meter: UsageMeter,
        emit: Emit,
        round: int,
        deps: list[StepResult],
        feedback: str | None,
        data_type: type[BaseModel] | None,
        exhausted: list[BudgetExceeded],
        known: dict[str, Chunk],
    ) -> StepResult:
        emit(StepStarted(run_id=run_id, step_id=step.id, round=round))
        started = _now()
        attempts: list[Attempt] = []
        hits: list[SearchHit] = []
        conflicts: list[Conflict] = []

        def on_attempt(attempt: Attempt) -> None:
            emit(ModelAttempted.of(run_id, f"step:{step.id}", attempt))  # with its answer
            # The step's trace holds the parsed answer; its raw text is recorded once, above.
            if attempt.response is not None:
                attempt = attempt.model_copy(update={"key": None, "response": None})
            attempts.append(attempt)

        def failed(error: str) -> StepResult:
            result = StepResult(
                step_id=step.id,
                kind=step.kind,
                status="failed",
                round=round,
                error=error,
                retrieved=hits,
                attempts=attempts,
                usage=sum((a.usage for a in attempts), Usage()),
                feedback=feedback,
                started_at=started,
                finished_at=_now(),
            )
            emit(
                StepFailed(run_id=run_id, step_id=step.id, round=round, error=error, result=result)
            )
            return result

        try:
            hits = await self._retrieve(step)
            inherited = await self._inherited_evidence(deps, known)
            changes: list[Change] = []
            if step.kind == "compare" and len(inherited):
                # Each side of a clause, so the comparison can cite both; then what changed.
                order, retrieved = _by_document(deps)
                inherited = inherited.merged(
                    counterparts(inherited, retrieved, start=len(inherited) + 1)
                )
                changes = diff(inherited, order)
            # A comparison told what changed works from the sentences: a small model copies
            # the earlier steps' answers, slips included, rather than compare.
            head = prompt_head(step, task=task, dependencies=[] if changes else deps)
            pack = partial(
                pack_prompt,
                step,
                head,
                hits=hits,
                inherited=inherited,
                feedback=feedback,
                data_type=data_type,
                window=self.model.context_window,
                output_tokens=self.output_tokens,
            )
            pool, messages, schema = pack()
            # Only a step that reads chosen documents: there the noise is the neighbouring
            # clauses. A question over the whole collection keeps whole chunks, whose other
            # sentences may carry the next hop or the other side of a disagreement.
            narrowed = bool(self.focus and hits and step.document_ids)
            narrowed = narrowed and step.kind in _FOCUSED_KINDS and data_type is None
            if narrowed:
                # The sentences that matter, not whole chunks: less for a small model to
                # misread, and fewer tokens to read.
                pool = focused(step, pool, task=task, per_document=self.focus, keep=inherited.ids)
            conflicts = _conflicts(step, pool, data_type, deps)
            notes = [conflict_note(conflicts)] if conflicts else []
            if changes:
                notes.append(change_note(changes))
            if narrowed and feedback:
                notes += value_note(step, pool, task=task)  # where the asked value is
            if narrowed:
                note = "\n\n".join(notes) or None
                messages = build_messages(head, pool, feedback, note)
                schema = output_model(step.kind, pool.ids, data_type)
            elif notes:
                # Told before it answers; packed again, as the note takes room too.
                pool, messages, schema = pack(notes="\n\n".join(notes))
                shown = set(pool.ids)
                conflicts = [c for c in conflicts if all(s.ref in shown for s in c.sides)]
                changes = [c for c in changes if all(s.ref in shown for s in c.sides)]
            call = generate(
                self.model,
                messages,
                output_type=schema,
                settings=self._settings(feedback, round),
                max_reasks=self.max_reasks,
                retry=self.retry,
                meter=meter,
                on_attempt=on_attempt,
                purpose=f"step:{step.id}",
            )
            if self.step_timeout is None:
                completion = await call
            else:
                async with asyncio.timeout(self.step_timeout):
                    completion = await call
        except BudgetExceeded as exc:
            exhausted.append(exc)
            return failed(f"budget spent: {exc}")
        except TimeoutError:
            return failed(f"StepTimeout: no answer within the step timeout ({self.step_timeout}s)")
        except MaestroError as exc:
            if interrupts_run(exc):
                raise
            return failed(f"{type(exc).__name__}: {exc}")
        answer, claims, data, missing, unknown = read_output(completion.output, pool, data_type)
        if unknown:  # impossible under an enum schema; kept as a guard for custom models
            return failed(f"cited unknown evidence ids {unknown}")
        added = _tell_conflicts(conflicts, answer, claims, pool)
        if added:
            answer = " ".join([answer, *(claim.text for claim in added)]).strip()
            claims = [*claims, *added]
        result = StepResult(
            step_id=step.id,
            kind=step.kind,
            status="done",
            round=round,
            answer=answer,
            data=data,
            claims=claims,
            missing=missing,
            retrieved=hits,
            evidence_ids=pool.ids,
            conflicts=conflicts,
            added=[claim.text for claim in added],
            changes=changes,
            prompt=[{"role": m.role, "content": m.content} for m in messages],
            feedback=feedback,
            attempts=attempts,
            usage=completion.usage,
            model=completion.model,
            started_at=started,
            finished_at=_now(),
        )
        emit(
            StepFinished(
                run_id=run_id,
                step_id=step.id,
                round=round,
                answer=answer[:500],
                citations=len(result.citations),
                usage=completion.usage,
                result=result,
            )
        )
        return result

    async def _inherited_evidence(
        self, deps: Sequence[StepResult], known: dict[str, Chunk]
    ) -> EvidencePool:
        """Citations of the dependencies, offered again (``e1``...) so a later step can cite
        the same sources.

        ``known`` holds the chunks this execution has seen, by id, and gains those read
        here: down a chain of steps that cite the first step's evidence, the cited chunk is
        read from the store once, not once per step.
        """
        citations = [c for dep in deps for c in dep.citations]
        if not citations:
            return EvidencePool([], [])
        for dep in deps:
            for hit in dep.retrieved:
                known.setdefault(hit.chunk.id, hit.chunk)
        missing = sorted({c.chunk_id for c in citations if c.chunk_id not in known})
        if missing and self.retriever is not None:
            for chunk in await self.retriever.get_chunks(missing):
                known[chunk.id] = chunk
        return EvidencePool.from_citations(citations, known)


def _by_document(deps: Sequence[StepResult]) -> tuple[list[str], dict[str, list[Chunk]]]:
    """The documents the dependencies read, in their order, and the chunks they retrieved
    from each."""
    retrieved: dict[str, list[Chunk]] = {}
    for dep in deps:
        for hit in dep.retrieved:
            chunks = retrieved.setdefault(hit.chunk.document_id, [])
            if all(c.id != hit.chunk.id for c in chunks):
                chunks.append(hit.chunk)
    return list(retrieved), retrieved


_CONFLICTING_KINDS = frozenset({"answer", "synthesize"})
_FOCUSED_KINDS = frozenset({"answer"})
"""Steps whose retrieved evidence is cut to the sentences that match their question: those
that answer one question. An extract step fills many fields, a summary covers everything."""


def _tell_conflicts(
    conflicts: Sequence[Conflict], answer: str, claims: Sequence[Claim], pool: EvidencePool
) -> list[Claim]:
    """Claims telling the conflicts that ``answer`` states one side of and leaves the rest
    untold: the framework found them by comparing the evidence, so it states them itself
    (citing both sentences) rather than spend a round asking a small model to."""
    cited = {c.document_id for claim in claims for c in claim.citations}
    added: list[Claim] = []
    for conflict in to_complete(conflicts, answer, cited):
        citations, _ = pool.resolve([side.ref for side in conflict.sides])
        added.append(Claim(text=told(conflict), citations=citations))
    return added


def _conflicts(
    step: Step,
    pool: EvidencePool,
    data_type: type[BaseModel] | None,
    deps: Sequence[StepResult],
) -> list[Conflict]:
    """Where the evidence a step is shown disagrees with itself about what it asks: for the
    steps that answer a question. Not for comparisons, which state each document's side by
    design, nor a summary of them; nor for an extracted record, whose every field cites its
    own source."""
    if step.kind not in _CONFLICTING_KINDS or data_type is not None or not len(pool):
        return []
    if deps and all(d.kind == "compare" for d in deps):
        return []
    statements = [
        Statement(item.text, item.chunk.document_id, item.chunk.title, item.id)
        for item in pool.items
    ]
    return find_conflicts(statements, step.instruction)
