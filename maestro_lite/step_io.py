"""What one step sends to the model and how its answer becomes cited results.

The output schema of a step is built for that step: evidence ids are an ``enum`` of the ids
the step was shown, so a grammar-constrained model can only cite real evidence, and any other
model's invented id fails validation and is re-asked. For ``extract`` steps and typed final
outputs every top-level field of the user's type is wrapped as ``{value, evidence,
missing_reason}``: each value carries its own source span, and a field the documents do not
state is null with the reason, never invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, create_model

from ._dynamic import list_of, literal_of, optional
from .evidence import EvidencePool
from .models.base import Message
from .models.generate import schema_tokens
from .plan import Step, StepKind
from .result import Claim, StepResult
from .retrieval import SearchHit
from .tokens import count_tokens
from .untrusted import MARK_TOKENS, UNTRUSTED_RULE, mark_untrusted

__all__ = [
    "StepOutput",
    "build_messages",
    "output_model",
    "pack_prompt",
    "prompt_head",
    "read_output",
]

_SYSTEM = (
    "You are a meticulous analyst. Use only the evidence given and the results of earlier "
    "steps. Cite evidence by its id (like c1.s2 or e3). If the evidence does not contain "
    "what is asked, say so plainly; never guess or use outside knowledge. " + UNTRUSTED_RULE
)

_GUIDANCE: dict[StepKind, str] = {
    "answer": "Answer the step's question directly. Then list each supporting fact as a claim "
    "citing the ids of the sentences that state it.",
    "extract": "Fill each field from the evidence and cite the ids that state it. If the "
    "evidence does not state a field, set its value to null and give missing_reason.",
    "compare": "For each document, state what it says on the aspect, citing it. Then state "
    "plainly what differs and what is the same.",
    "summarize": "Summarize the evidence faithfully and briefly; every claim cites its ids.",
    "synthesize": "Write the final answer to the overall task from the earlier results. Every "
    "claim cites evidence ids. If sources contradict each other, say so and cite both.",
}

StepOutput = BaseModel

MAX_ANSWER_CHARS = 2000
MAX_CLAIM_CHARS = 500
MAX_CLAIMS = 10
MAX_EVIDENCE_PER_CLAIM = 8


def _evidence_type(ids: Sequence[str]) -> Any:
    return literal_of(ids) if ids else None


def output_model(
    kind: StepKind, evidence_ids: Sequence[str], data_type: type[BaseModel] | None = None
) -> type[BaseModel]:
    """The schema a step's model must fill.

    Ids are positional (``c1.s1``...), so steps of the same shape share one schema: building
    a pydantic model and its JSON schema costs milliseconds, which a cache saves per step.
    """
    return _output_model(kind, tuple(evidence_ids), data_type)


@lru_cache(maxsize=512)
def _output_model(
    kind: StepKind, evidence_ids: tuple[str, ...], data_type: type[BaseModel] | None
) -> type[BaseModel]:
    ev = _evidence_type(evidence_ids)
    if data_type is not None:
        fields: dict[str, Any] = {}
        for name, info in data_type.model_fields.items():
            wrapped: dict[str, Any] = {
                "value": (
                    optional(info.annotation),
                    Field(default=None, description=info.description or name),
                ),
                "missing_reason": (
                    str | None,
                    Field(
                        default=None,
                        max_length=MAX_CLAIM_CHARS,
                        description="Why the evidence does not give a value",
                    ),
                ),
            }
            if ev is not None:
                wrapped["evidence"] = (
                    list_of(ev),
                    Field(default_factory=list, max_length=MAX_EVIDENCE_PER_CLAIM),
                )
            fields[name] = (create_model(f"{data_type.__name__}_{name}", **wrapped), ...)
        return create_model(f"Extracted{data_type.__name__}", **fields)
    # Bounds keep answers focused; pydantic enforces them (over-long answers are re-asked).
    answer_field = (
        str,
        Field(max_length=MAX_ANSWER_CHARS, description="The direct answer, in 1-4 sentences"),
    )
    if ev is None:
        return create_model("StepAnswer", answer=answer_field)
    claim = create_model(
        "CitedClaim",
        text=(str, Field(max_length=MAX_CLAIM_CHARS, description="One factual statement")),
        evidence=(
            list_of(ev),
            Field(
                max_length=MAX_EVIDENCE_PER_CLAIM, description="ids of the sentences that state it"
            ),
        ),
    )
    return create_model(
        "StepAnswer",
        answer=answer_field,
        claims=(list_of(claim), Field(max_length=MAX_CLAIMS)),
    )


def prompt_head(
    step: Step,
    *,
    task: str,
    dependencies: Sequence[StepResult],
) -> str:
    """Everything in a step's prompt before the evidence."""
    lines = [f"Overall task: {task}", f"Your step ({step.kind}): {step.instruction}"]
    if step.expected_output:
        lines.append(f"It must produce: {step.expected_output}")
    lines.append(_GUIDANCE[step.kind])
    if step.document_ids and step.kind == "answer":
        # A step that reads part of the collection answers its own question only: a small
        # model otherwise answers the overall task (both versions) from one version's text.
        lines.append(
            "Answer only your step's question, for the document(s) it reads; other steps "
            "cover the rest of the overall task. If several sentences state what is asked, "
            "for different cases, give each value with the case it applies to."
        )
    if dependencies:
        lines += ["", "Results of earlier steps:"]
        bodies = [f"- {d.step_id}: {d.answer or d.data or '(no answer)'}" for d in dependencies]
        lines.append(mark_untrusted("\n".join(bodies), source="earlier results"))
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _system_tokens() -> int:
    return count_tokens(_SYSTEM)


_NO_EVIDENCE = EvidencePool([], [])
_MIN_EVIDENCE_TOKENS = 256
"""Room kept for retrieved evidence even when the window is nearly full: a step with
nothing else to go on gets at least its best chunk."""
_ENUM_ID_TOKENS = 5
"""What one evidence id adds to the output schema (an entry of its ``enum``)."""


def pack_prompt(
    step: Step,
    head: str,
    *,
    hits: Sequence[SearchHit],
    inherited: EvidencePool,
    feedback: str | None,
    data_type: type[BaseModel] | None,
    window: int,
    output_tokens: int,
    notes: str | None = None,
) -> tuple[EvidencePool, list[Message], type[BaseModel]]:
    """A step's evidence, messages and output schema, fitted to the model's window.

    Everything in the prompt counts against ``window`` minus ``output_tokens``: the
    instructions, the results of earlier steps, the evidence inherited from them, the
    retrieved evidence (whole chunks, most relevant first) and the output schema, which
    lists every evidence id. Inherited evidence comes first; retrieved chunks fill what is
    left. What still does not fit is shed from the end: retrieved chunks, then inherited
    sentences. A single retrieved chunk with nothing else to go on stays, whatever it costs.
    ``notes`` (what the framework found in the evidence, such as sources that disagree)
    follow the evidence.

    Returns:
        ``(evidence, messages, output schema)``.
    """
    limit = window - output_tokens
    if not hits:
        messages = build_messages(head, inherited, feedback, notes)
        schema = output_model(step.kind, inherited.ids, data_type)
        # A token is at least one byte: a prompt with fewer bytes than the room surely fits,
        # and needs no tokenising (most steps without retrieval).
        size = sum(len(m.content.encode()) + 4 for m in messages) + schema_tokens(schema)
        if size <= limit:
            return inherited, messages, schema
    user = build_messages(head, _NO_EVIDENCE, feedback, notes)[1].content
    fixed = _system_tokens() + count_tokens(user) + 8 + MARK_TOKENS  # framing, evidence tags
    retrieved = _NO_EVIDENCE
    if hits:
        room = limit - fixed - inherited.tokens
        room -= schema_tokens(output_model(step.kind, inherited.ids, data_type))
        if not len(inherited):
            room = max(_MIN_EVIDENCE_TOKENS, room)
        if room > 0:
            fields = len(data_type.model_fields) if data_type is not None else 1
            retrieved = EvidencePool.from_hits(
                hits, max_tokens=room, id_tokens=_ENUM_ID_TOKENS * fields
            )
    while True:  # the estimate above is close; check it with the real schema, shed if over
        pool = inherited.merged(retrieved)
        schema = output_model(step.kind, pool.ids, data_type)
        over = fixed + pool.tokens + schema_tokens(schema) - limit
        if over <= 0:
            break
        if len(retrieved):
            shed = retrieved.shed(over, whole_chunks=True, keep_first=not len(inherited))
            if len(shed) == len(retrieved):
                break  # one chunk and nothing else: the model's window is the limit
            retrieved = shed
        elif len(inherited):
            inherited = inherited.shed(over)
        else:
            break
    return pool, build_messages(head, pool, feedback, notes), schema


def build_messages(
    head: str, pool: EvidencePool, feedback: str | None = None, notes: str | None = None
) -> list[Message]:
    """The messages of one step call: the head, the numbered evidence, the framework's notes
    on it, and (when the step is re-run) why its previous answer failed, last, where a small
    model attends most."""
    if len(pool):
        user = (
            f"{head}\n\nEvidence (cite by id):\n{mark_untrusted(pool.render(), source='evidence')}"
        )
    else:
        user = f"{head}\n\nEvidence: none."
    if notes:
        user += f"\n\n{notes}"
    if feedback:
        user += (
            "\n\nYour previous answer to this step failed these checks. Answer again and fix "
            f"them, using only the evidence above:\n{feedback}"
        )
    return [Message.system(_SYSTEM), Message.user(user)]


def read_output(
    output: BaseModel, pool: EvidencePool, data_type: type[BaseModel] | None
) -> tuple[str, list[Claim], dict[str, Any] | None, dict[str, str], list[str]]:
    """``(answer, claims, data, missing, unknown ids)`` from a validated step output."""
    unknown: list[str] = []
    if data_type is not None:
        data: dict[str, Any] = {}
        missing: dict[str, str] = {}
        claims: list[Claim] = []
        for name in data_type.model_fields:
            field = getattr(output, name)
            value = field.value
            data[name] = value.model_dump() if isinstance(value, BaseModel) else value
            ids = getattr(field, "evidence", [])
            citations, bad = pool.resolve(ids)
            unknown += bad
            if value is None or value == [] or value == "":
                missing[name] = field.missing_reason or "not stated in the evidence"
            else:
                shown = value if not isinstance(value, BaseModel) else value.model_dump_json()
                claims.append(Claim(text=f"{name}: {shown}", citations=citations))
        answer = "; ".join(c.text for c in claims) or "no field found in the evidence"
        return answer, claims, data, missing, unknown
    answer = str(getattr(output, "answer", "")).strip()
    claims = []
    for raw in getattr(output, "claims", []):
        citations, bad = pool.resolve(raw.evidence)
        unknown += bad
        claims.append(Claim(text=raw.text.strip(), citations=citations))
    return answer, claims, None, {}, unknown
