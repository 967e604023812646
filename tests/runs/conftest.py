"""A deterministic scenario for resume tests, and a run store that dies like a killed process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestro_lite.events import Event
from maestro_lite.models import FunctionModel, Message, ModelCall, ModelSettings
from maestro_lite.runs import RunRecord, RunSpec, RunState, RunSummary, SQLiteRunStore
from maestro_lite.testing import Responder, responder_from
from maestro_lite.untrusted import find_marked

from ..orchestration.conftest import cite, contracts, step_of
from ..orchestration.test_orchestrator import answer_notice, judge_mentions, notice_plan, routed

__all__ = [
    "Killed",
    "answering_reasks",
    "KillingStore",
    "contracts",
    "fix_then_replan_model",
    "over_http",
    "unit_of",
]

REVISED_PLAN: dict[str, Any] = {
    "rationale": "Add governing law.",
    "steps": [
        {
            "id": "s4",
            "kind": "answer",
            "instruction": "Governing law of the 2023 version",
            "depends_on": [],
            "queries": ["governed laws"],
            "documents": ["D1"],
        },
        {
            "id": "s5",
            "kind": "answer",
            "instruction": "Governing law of the 2025 version",
            "depends_on": [],
            "queries": ["governed laws"],
            "documents": ["D2"],
        },
        {
            "id": "s6",
            "kind": "synthesize",
            "instruction": "Summarise notice and law",
            "depends_on": ["s1", "s2", "s4", "s5"],
            "queries": [],
            "documents": [],
        },
    ],
}


def fix_then_replan_model() -> FunctionModel:
    """A model whose answers depend only on the prompt (not on how often it was called), so a
    fresh instance continues a run exactly where another left it: the run goes plan, execute,
    fix the synthesis, replan with governing law, and passes in round 3."""

    def plan(call: ModelCall) -> dict[str, Any]:
        return REVISED_PLAN if "A previous plan ran" in call.last_user else notice_plan(call)

    def step(call: ModelCall) -> dict[str, Any]:
        instruction = step_of(call)
        if "Governing law" in instruction:
            needle = "New York" if "2023" in instruction else "Delaware"
            return {"answer": needle, "claims": [{"text": needle, "evidence": cite(call, needle)}]}
        if "Summarise" in instruction:
            return {
                "answer": "Notice 90 -> 60 days; law New York -> Delaware.",
                "claims": [
                    {"text": "notice", "evidence": cite(call, "90 days") + cite(call, "60 days")},
                    {"text": "law", "evidence": cite(call, "New York") + cite(call, "Delaware")},
                ],
            }
        return answer_notice(call)

    return routed(plan, step, judge_mentions("Delaware"))


class Killed(BaseException):
    """The process died (a BaseException, like the KeyboardInterrupt a signal raises)."""


class KillingStore:
    """A run store whose process dies right after its ``after``-th event is committed:
    nothing is written after that, exactly as if the process had been SIGKILLed."""

    def __init__(self, path: Path, after: int) -> None:
        self.inner = SQLiteRunStore(path)
        self.after = after
        self.appended = 0
        self.dead = False

    def create(self, spec: RunSpec) -> None:
        self.inner.create(spec)

    def claim(self, run_id: str, *, force: bool = False, reopen: bool = False) -> RunRecord:
        return self.inner.claim(run_id, force=force, reopen=reopen)

    def append(self, event: Event) -> None:
        if self.dead:
            return
        if self.appended == self.after:
            self.dead = True
            raise Killed
        self.inner.append(event)
        self.appended += 1

    def get(self, run_id: str) -> RunRecord:
        return self.inner.get(run_id)

    def list(self, *, limit: int | None = 50, status: RunState | None = None) -> list[RunSummary]:
        return self.inner.list(limit=limit, status=status)

    def events(self, run_id: str) -> list[Event]:
        return self.inner.events(run_id)

    def request_cancel(self, run_id: str) -> None:
        self.inner.request_cancel(run_id)

    def take_cancel(self, run_id: str) -> bool:
        return self.inner.take_cancel(run_id)

    def close(self) -> None:
        self.inner.close()


def over_http(model: FunctionModel) -> Responder:
    """A server responder answering each HTTP request as ``model``'s function would answer
    the same call in process."""
    function: Any = model._function
    return responder_from(function)


_CORRECTIONS = ("That reply does not match the required JSON schema", "That reply was cut off")


def answering_reasks(responder: Responder) -> Responder:
    """``responder``, answering a re-ask (the request again, with the rejected reply and the
    correction appended) as it answered the request: the scenario's functions read the last
    user message, which a re-ask replaces with the correction."""

    def respond(body: dict[str, Any]) -> str | dict[str, Any]:
        messages = list(body["messages"])
        while len(messages) > 2 and str(messages[-1]["content"]).startswith(_CORRECTIONS):
            messages = messages[:-2]  # the rejected reply and the correction
        return responder({**body, "messages": messages})

    return respond


def unit_of(body: dict[str, Any]) -> str:
    """What a request to the scenario's server is for: the plan, a revision of it, a step
    (by instruction, and whether it is a fix), or a judgement (by the output judged)."""
    fmt = body.get("response_format") or {}
    title = fmt.get("json_schema", {}).get("schema", {}).get("title")
    call = ModelCall(
        [Message(role=m["role"], content=m["content"]) for m in body["messages"]],
        None,
        ModelSettings(),
    )
    if title == "PlanDraft":
        return "replan" if "A previous plan ran" in call.last_user else "plan"
    if title == "Verdicts":
        return "judge:" + find_marked(call.last_user, "output")[0]
    fix = " (fix)" if "failed these checks" in call.prompt else ""
    return f"step:{step_of(call)}{fix}"
