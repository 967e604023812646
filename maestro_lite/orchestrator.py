"""``Maestro``: plan, execute, validate, and fix or replan within a budget.

Each round runs the plan, validates the results, and chooses one of a closed set of decisions
(:class:`~maestro_lite.result.Decision`): finish, fix (re-run the failing steps with the
failure reasons as feedback), or replan (ask the planner for a revised plan that keeps the
steps that passed). The choice and its reason are recorded in the result and the events.
When the budget ends first, the run returns its best result with the unmet requirements
marked, or raises :class:`~maestro_lite.errors.RequirementsNotMet` if asked to.

With a run store, every event is recorded as it happens (a step's result is committed
before the run moves on), so :meth:`Maestro.resume` continues a stopped run from its last
checkpoints: the stored plan, the finished steps, the rounds already decided.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from .budget import Budget, BudgetPreset
from .cache import ResponseCache
from .errors import (
    BudgetExceeded,
    MaestroError,
    RunInterruptedError,
    UserError,
    interrupts_run,
)
from .events import Event, EventHandler
from .executor import Executor
from .limits import Limiter
from .model_stack import ModelStack
from .models.base import ChatModel
from .models.retry import RetryPolicy
from .plan import Plan
from .planner import Planner
from .requirements import RequirementLike, normalize_requirements
from .result import RunResult
from .retrieval import Retriever, SearchMode
from .run_loop import RunParts, _Run
from .runs import (
    FINISHED,
    RecordedAnswers,
    RunRecord,
    RunSpec,
    RunStore,
    budget_of,
    exhausted_limit,
    finished_error,
    raise_budget_hint,
    resume_point,
    until_cancelled,
)
from .settings import Settings
from .usage import Usage
from .validator import Validator

__all__ = ["CorpusStore", "EventHandler", "Maestro", "RunClaim", "RunClaims"]


@dataclass(frozen=True)
class _Override:
    model: ChatModel | None
    corpora: CorpusStore | None


_OVERRIDES: ContextVar[Mapping[int, _Override]] = ContextVar(
    "maestro_overrides", default=MappingProxyType({})
)
"""What ``Maestro.override`` swapped, by orchestrator, in this task (and those it starts)."""


@runtime_checkable
class CorpusStore(Protocol):
    """Opens a corpus by name (:class:`~maestro_lite.corpora.Corpora` implements it)."""

    async def corpus(self, name: str) -> Retriever: ...


@dataclass(frozen=True)
class RunClaim:
    """Which run a :meth:`Maestro.run` call is (see :class:`RunClaims`)."""

    run_id: str
    resume: bool = False
    """Resume that run (an unfinished one asked the same) instead of starting it."""
    force: bool = False
    """Take the run over even if its recorded owner may still seem to run it: the claimer
    knows better (it holds the lease of the job the run belongs to, or a cluster retries a
    task whose node died, on another machine)."""


@runtime_checkable
class RunClaims(Protocol):
    """Decides which run each :meth:`Maestro.run` call is, for an owner of runs (the
    worker's jobs: a job continued after a restart resumes the runs it had started)."""

    async def claim(self, spec: RunSpec, run_id: str | None) -> RunClaim:
        """The run for ``spec`` (its ``run_id`` is ``""``); ``run_id``: the one asked for."""
        ...


class Maestro:
    """The orchestrator.

    Args:
        model: The model for steps (and, unless given separately, planning and judging).
        corpora: Resolves ``corpus="name"`` to a retriever (a
            :class:`~maestro_lite.corpora.Corpora`).
        planner_model: A different model for planning (often a stronger one).
        judge_model: A different model for judging requirements.
        concurrency: Most steps in flight at once.
        search_mode: Retrieval mode for step queries.
        retry: Backoff for transient model errors.
        max_reasks: Re-asks per call when output does not match its schema.
        output_tokens: Tokens reserved for each step's answer.
        check_figures: Fail steps whose answers state figures their cited evidence does not
            contain (turn off for tasks that compute new figures, such as counting).
        on_event: Called with every event of every run (sync or async).
        run_store: Where runs are recorded, so they can be listed and resumed
            (``SQLiteRunStore.open(settings)``); ``None`` records nothing.
        cache: Answers identical model calls from this cache (``ResponseCache.open(settings)``);
            a run can opt out with ``run(..., cache=False)``.
        limiter: Per-provider limits shared with every other orchestrator given the same
            limiter; ``None``: only ``concurrency`` limits calls.
        step_timeout: Seconds a step's model call may take, retries included.
        caller: Who makes every call at the limiter (fairness between callers); ``None``:
            each run as itself, calls outside runs as the ``caller`` they give.
        claims: Decides which run each :meth:`run` call is (resuming an owner's unfinished
            runs); ``None``: every call starts a new run.
        focus: Sentences kept per document in the retrieved evidence of an answering step
            that reads chosen documents (a document filter): those that best match the
            step's question (:mod:`.focus`); 0 shows whole chunks.
        plan_versions: A task that names document versions by year ("between the 2023 and
            2025 agreements") gets its per-version plan without a planner call
            (:mod:`.version_plan`).
        store: The old name of ``corpora`` (still accepted).

    Example::

        maestro = Maestro(model=model, corpora=Corpora(settings))
        result = await maestro.run("How did the liability cap change?", corpus="contracts",
                                   requirements=["cite a source for every figure"])
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        corpora: CorpusStore | None = None,
        planner_model: ChatModel | None = None,
        judge_model: ChatModel | None = None,
        concurrency: int = 4,
        search_mode: SearchMode = "hybrid",
        retry: RetryPolicy | None = None,
        max_reasks: int = 2,
        output_tokens: int = 1024,
        check_figures: bool = True,
        on_event: EventHandler | None = None,
        run_store: RunStore | None = None,
        cache: ResponseCache | None = None,
        limiter: Limiter | None = None,
        step_timeout: float | None = None,
        caller: str | None = None,
        claims: RunClaims | None = None,
        focus: int = 8,
        plan_versions: bool = True,
        store: CorpusStore | None = None,
    ) -> None:
        self._model = model
        self._corpora = corpora if corpora is not None else store  # `store`: the old name
        self._planner_model = planner_model
        self._judge_model = judge_model
        self.concurrency = concurrency
        self.search_mode: SearchMode = search_mode
        self.retry = retry
        self.max_reasks = max_reasks
        self.output_tokens = output_tokens
        self.check_figures = check_figures
        self.on_event = on_event
        self.run_store = run_store
        self.cache = cache
        self.limiter = limiter
        self.step_timeout = step_timeout
        self.caller = caller
        self.claims = claims
        self.focus = focus
        self.plan_versions = plan_versions
        self._owned: list[Callable[[], Awaitable[None] | None]] = []

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> Maestro:
        """The orchestrator the CLI runs with, in one call: the configured model (with its
        fallback, see ``MAESTRO_FALLBACK_MODEL``), corpora by name, the SQLite run store and
        the disk response cache under the settings' home, and the limits the settings set
        (``MAESTRO_MAX_CONCURRENT``...; one limiter per process for equal limits, so every
        orchestrator built here shares it). Close it with :meth:`aclose` (or ``async with``).

        Args:
            settings: The configuration; ``Settings.from_env()`` when ``None``.
            options: Any argument of ``Maestro`` (``model=``, ``cache=None``...), used
                instead of what the settings would build.
        """
        from .corpora import Corpora
        from .models import model_from_settings
        from .runs import open_run_store

        settings = settings or Settings.from_env()
        built: dict[str, Any] = {}
        owned: list[Callable[[], Awaitable[None] | None]] = []
        if "model" not in options:
            built["model"] = model_from_settings(settings)
        if "corpora" not in options and "store" not in options:
            corpora = Corpora(settings)
            built["corpora"] = corpora
            owned.append(corpora.aclose)
        if "run_store" not in options:
            run_store = open_run_store(settings)
            built["run_store"] = run_store
            owned.append(run_store.close)
        if "cache" not in options:
            cache = ResponseCache.open(settings)
            built["cache"] = cache
            owned.append(cache.close)
        if "limiter" not in options:
            built["limiter"] = Limiter.from_settings(settings)
        maestro = cls(**{**built, **options})
        maestro._owned = owned
        return maestro

    async def aclose(self) -> None:
        """Close what :meth:`from_settings` opened (the corpora, the run store, the cache);
        what you passed in stays yours to close."""
        owned, self._owned = self._owned, []
        for close in owned:
            outcome = close()
            if outcome is not None:
                await outcome

    async def __aenter__(self) -> Maestro:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # The model and store as this task sees them: overridden in a `with override(...)`
    # block (of this task and the tasks it starts), as given everywhere else.
    def _swapped(self) -> _Override | None:
        return _OVERRIDES.get().get(id(self))

    @property
    def model(self) -> ChatModel:
        """The model for steps (and for planning and judging unless given separately)."""
        swapped = self._swapped()
        return swapped.model if swapped is not None and swapped.model else self._model

    @model.setter
    def model(self, model: ChatModel) -> None:
        self._model = model

    @property
    def planner_model(self) -> ChatModel | None:
        """A different model for planning, if any (none under ``override(model=...)``)."""
        swapped = self._swapped()
        return None if swapped is not None and swapped.model else self._planner_model

    @planner_model.setter
    def planner_model(self, model: ChatModel | None) -> None:
        self._planner_model = model

    @property
    def judge_model(self) -> ChatModel | None:
        """A different model for judging, if any (none under ``override(model=...)``)."""
        swapped = self._swapped()
        return None if swapped is not None and swapped.model else self._judge_model

    @judge_model.setter
    def judge_model(self, model: ChatModel | None) -> None:
        self._judge_model = model

    @property
    def corpora(self) -> CorpusStore | None:
        """Resolves ``corpus="name"`` to a retriever."""
        swapped = self._swapped()
        return swapped.corpora if swapped is not None and swapped.corpora else self._corpora

    @corpora.setter
    def corpora(self, corpora: CorpusStore | None) -> None:
        self._corpora = corpora

    @property
    def store(self) -> CorpusStore | None:
        """The old name of :attr:`corpora` (kept as an alias)."""
        return self.corpora

    @store.setter
    def store(self, corpora: CorpusStore | None) -> None:
        self._corpora = corpora

    @contextmanager
    def override(
        self,
        *,
        model: ChatModel | None = None,
        corpora: CorpusStore | None = None,
        store: CorpusStore | None = None,
    ) -> Iterator[Maestro]:
        """Swap the model or the corpora for the duration of a ``with`` block (for tests);
        ``store`` is the old name of ``corpora``.

        The swap is seen only by this task and the tasks it starts inside the block: runs
        of the same orchestrator in other tasks go on with its own model and corpora.
        """
        earlier = self._swapped()
        corpora = corpora or store
        swapped = _Override(
            model=model or (earlier.model if earlier else None),
            corpora=corpora or (earlier.corpora if earlier else None),
        )
        token = _OVERRIDES.set({**_OVERRIDES.get(), id(self): swapped})
        try:
            yield self
        finally:
            _OVERRIDES.reset(token)

    def outside_model(self, *, caller: str = "pipeline") -> ChatModel:
        """The step model as runs call it, for the few calls made outside a run (a pipeline
        splitting a question or proposing aspects): in the same model stack (limits, cache),
        as ``caller`` for fairness between callers. Count such calls with a meter and pass
        its usage to the run they serve (``run(..., usage=meter.usage)``)."""
        return self._stack(caller, cache=True).wrap(self.model)

    def run_sync(self, task: str, **kwargs: Any) -> RunResult:
        """:meth:`run` for code without an event loop."""
        return _sync("run", lambda: self.run(task, **kwargs))

    def resume_sync(self, run_id: str, **kwargs: Any) -> RunResult:
        """:meth:`resume` for code without an event loop."""
        return _sync("resume", lambda: self.resume(run_id, **kwargs))

    def _stack(
        self, caller: str, *, cache: bool, recorded: RecordedAnswers | None = None
    ) -> ModelStack:
        return ModelStack(
            limiter=self.limiter,
            caller=self.caller or caller,
            recorded=recorded,
            cache=self.cache if cache else None,
        )

    def _parts(
        self,
        run_id: str,
        corpus: Retriever | None,
        *,
        cache: bool,
        history: Sequence[Event] | None = None,
    ) -> RunParts:
        """The planner, executor and validator of one run. With a run store, each answer is
        keyed for the run's record and, on resume (``history``), a call the run recorded is
        answered from that record."""
        recorded = None
        if self.run_store is not None:
            recorded = RecordedAnswers.of(history) if history is not None else RecordedAnswers()
        stack = self._stack(run_id, cache=cache, recorded=recorded)
        return RunParts(
            planner=Planner(
                stack.wrap(self.planner_model or self.model),
                retry=self.retry,
                max_reasks=self.max_reasks,
            ),
            executor=Executor(
                stack.wrap(self.model),
                corpus,
                concurrency=self.concurrency,
                mode=self.search_mode,
                output_tokens=self.output_tokens,
                retry=self.retry,
                max_reasks=self.max_reasks,
                step_timeout=self.step_timeout,
                focus=self.focus,
            ),
            validator=Validator(
                stack.wrap(self.judge_model or self.model),
                corpus,
                retry=self.retry,
                max_reasks=self.max_reasks,
                check_figures=self.check_figures,
            ),
            plan_versions=self.plan_versions,
        )

    async def _drive(self, run: _Run) -> RunResult:
        """Run ``run``; if it stops before finishing, record why and say how to resume."""
        try:
            if self.run_store is None:
                return await run.go()
            return await until_cancelled(run.go(), self.run_store, run.run_id)
        except BaseException as exc:
            run.interrupted(exc)
            if isinstance(exc, MaestroError) and interrupts_run(exc):
                resumable = self.run_store is not None
                raise RunInterruptedError(run.run_id, exc, resumable=resumable) from exc
            raise

    async def _retriever(self, corpus: str | Retriever | None) -> Retriever | None:
        if corpus is None or isinstance(corpus, Retriever):
            return corpus
        if self.corpora is None:
            raise UserError(
                f"corpus {corpus!r} was given by name but Maestro has no corpora",
                hint="Pass corpora=Corpora(settings) to Maestro, or a retriever as corpus=.",
            )
        return await self.corpora.corpus(corpus)

    async def run(
        self,
        task: str,
        *,
        corpus: str | Retriever | None = None,
        requirements: Sequence[RequirementLike] = (),
        budget: Budget | BudgetPreset | None = "medium",
        output_type: type[BaseModel] | None = None,
        plan: Plan | None = None,
        data_types: Mapping[str, type[BaseModel]] | None = None,
        run_id: str | None = None,
        on_event: EventHandler | None = None,
        cache: bool = True,
        usage: Usage | None = None,
    ) -> RunResult:
        """Plan, execute and validate ``task``.

        Args:
            task: What to do, in natural language.
            corpus: The corpus to search: a name (resolved by ``corpora``) or a retriever.
            requirements: Natural-language strings, callables, or :class:`Requirement`.
            budget: ``"low"``, ``"medium"``, ``"high"`` or a :class:`Budget`.
            output_type: A pydantic model for the final output (each field cited).
            plan: A plan declared in Python; skips the planner.
            data_types: Output types of ``extract`` steps, by step id.
            run_id: An id for the run (generated when omitted).
            on_event: Called with this run's events, in addition to the instance's handler.
            cache: Answer identical calls from the orchestrator's response cache (if it has
                one); ``False`` asks the models afresh.
            usage: What was spent for this run before it started (a pipeline splitting the
                question under a ``UsageMeter``): counted in the run's usage and against its
                budget from the start.

        Returns:
            The result: output, citations, requirement report, plan, step traces, usage,
            events. Its ``status`` says whether every requirement passed.

        Raises:
            RequirementsNotMet: Requirements are unmet at the end and
                ``budget.raise_on_unmet`` is set.
            RunInterruptedError: A model endpoint stayed unavailable through every retry;
                with a run store, the run is saved and :meth:`resume` continues it.
            PlanError: ``plan`` is invalid for this corpus or budget (too many steps,
                unknown documents, page ranges past a document's end); nothing is recorded.
            UserError: Misuse (unknown corpus, bad arguments).
        """
        # Normalised once, here: the run, its record and its owner all use these.
        limits = Budget.of(budget)
        wanted = normalize_requirements(requirements)
        spec = RunSpec.of(
            run_id="",
            task=task,
            model=self.model.name,
            corpus=corpus,
            requirements=requirements,
            normalized=wanted,
            budget=limits,
            plan=plan,
            output_type=output_type,
            data_types=data_types or {},
            cache=cache,
        )
        if self.claims is not None:
            claim = await self.claims.claim(spec, run_id)
            if claim.resume:
                return await self.resume(
                    claim.run_id,
                    corpus=corpus if isinstance(corpus, Retriever) else None,
                    requirements=requirements,
                    output_type=output_type,
                    data_types=data_types,
                    on_event=on_event,
                    force=claim.force,
                )
            run_id = claim.run_id
        run_id = run_id or uuid.uuid4().hex[:12]
        spec = spec.model_copy(update={"run_id": run_id})
        retriever = await self._retriever(corpus)
        run = _Run(
            self._parts(run_id, retriever, cache=cache),
            task,
            corpus=retriever,
            requirements=wanted,
            budget=limits,
            output_type=output_type,
            plan=plan,
            data_types=data_types or {},
            run_id=run_id,
            handlers=self._handlers(on_event),
            corpus_name=spec.corpus,
            usage=usage,
        )
        await run.prepare()  # an invalid declared plan is refused before it is recorded
        if self.run_store is not None:
            self.run_store.create(spec)
        return await self._drive(run)

    def _handlers(self, on_event: EventHandler | None) -> list[EventHandler]:
        # The store first: a step is checkpointed before anyone else hears it finished.
        store = [self.run_store.append] if self.run_store is not None else []
        return [*store, *(h for h in (self.on_event, on_event) if h)]

    async def resume(
        self,
        run_id: str,
        *,
        corpus: Retriever | None = None,
        requirements: Sequence[RequirementLike] | None = None,
        output_type: type[BaseModel] | None = None,
        data_types: Mapping[str, type[BaseModel]] | None = None,
        on_event: EventHandler | None = None,
        force: bool = False,
        budget: Budget | BudgetPreset | None = None,
    ) -> RunResult:
        """Continue a run that stopped (interrupted, crashed, killed) from its checkpoints.

        The stored task, requirements, budget and plan are used again; steps that finished
        are kept, not run again, and rounds already validated are not validated again; a
        call the run made since its last checkpoint (a rejected plan draft, a judge call, a
        re-asked attempt) is answered from the run's record of it. No model call is paid
        twice, with or without the response cache. Usage so far stays in the run's totals
        and counts against its budget.

        Args:
            run_id: The run to continue.
            corpus: The retriever, when the run was given one as an object (a corpus given by
                name is opened again through ``corpora``).
            requirements: The run's requirements again; needed only when some were Python
                callables or schemas, which cannot be stored.
            output_type: The run's output type again, if it had one.
            data_types: The run's ``extract`` step types again, if it had any.
            on_event: Called with this session's events.
            force: Take over a run whose recorded owner process still seems alive.
            budget: A new budget for the run (usage so far counts against it), kept for
                later resumes; ``None`` keeps its own. A run that finished because its
                budget was spent goes on with a larger one: its last round is taken up
                again.

        Raises:
            RunNotFound: No run with this id in the run store.
            UserError: The run already finished (or stopped on its budget and no larger
                one was given), the new budget is spent already, it is running elsewhere,
                or what it needs from the caller (requirements, output types, corpus) was
                not given.
            RunInterruptedError: It stopped again (an endpoint still down).
        """
        store = self.run_store
        if store is None:
            raise UserError(
                "resume() needs the run store the run was recorded in",
                hint="Create Maestro with run_store=SQLiteRunStore.open(settings).",
            )
        stored = store.get(run_id)
        new_budget = Budget.of(budget) if budget is not None else None
        reopen = _reopens(stored, store.events(run_id), new_budget)
        spec = stored.spec
        restored = spec.restore_requirements(requirements)
        spec.check_types(output_type, data_types)
        if corpus is None and spec.corpus_object:
            raise UserError(
                f"run {run_id} searched a retriever passed as an object, which cannot be stored",
                hint="Pass it again: maestro.resume(run_id, corpus=retriever).",
            )
        retriever = await self._retriever(corpus if corpus is not None else spec.corpus)
        record = store.claim(run_id, force=force, reopen=reopen)
        history = store.events(run_id)
        run = _Run(
            self._parts(run_id, retriever, cache=spec.cache, history=history),
            spec.task,
            corpus=retriever,
            requirements=restored,
            budget=new_budget or budget_of(record, history),
            budget_changed=new_budget is not None,
            output_type=output_type,
            plan=spec.plan,
            data_types=data_types or {},
            run_id=run_id,
            handlers=self._handlers(on_event),
            corpus_name=spec.corpus,
            resume=resume_point(record, history, reopen=reopen),
            history=history,
        )
        return await self._drive(run)


def _reopens(stored: RunRecord, events: Sequence[Event], budget: Budget | None) -> bool:
    """Whether resuming ``stored`` reopens a finished run (one that stopped on its budget,
    given a new one).

    Raises:
        UserError: The run is over, or stopped on its budget and ``budget`` is missing or
            spent already.
    """
    run_id, status = stored.summary.run_id, stored.status
    limit = exhausted_limit(events)
    if status in FINISHED and (status == "passed" or limit is None):
        raise finished_error(run_id, status)
    if budget is None:
        if status in FINISHED:
            raise UserError(
                f"run {run_id} stopped on its budget ({limit})",
                hint=raise_budget_hint(run_id, limit or ""),
            )
        return False
    try:
        budget.limits.check_before_request(stored.summary.usage)
    except BudgetExceeded as exc:
        raise UserError(
            f"the new budget of run {run_id} is spent already: {exc}",
            hint=raise_budget_hint(run_id, exc.limit),
        ) from None
    return status in FINISHED


def _sync(name: str, start: Callable[[], Coroutine[Any, Any, RunResult]]) -> RunResult:
    """Run a coroutine from code without an event loop (the one sync entry point)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(start())
    raise UserError(
        f"{name}_sync() cannot run inside a running event loop; use `await maestro.{name}(...)`",
        hint=f"In async code (Jupyter, FastAPI, asyncio.run), await {name}() instead.",
    )
