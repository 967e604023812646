"""Retrieval driven by the entity the previous hop found (IRCoT-style hops).

A multi-hop question names its first hop ("the drummer who was inducted...") but not the
entity that hop leads to, and the paragraph that answers the second hop is about that entity,
not about the question's words. Each hop here is one short structured call: shown what a
search found so far, the model names the entity the question hinges on, exactly as the
evidence writes it, and the next search is made with that name. The answering itself stays
with the run's one cited step, which searches with the question and every entity found.

Measured with the local 1.5B model (BENCHMARKS.md, "Multi-hop: retrieval driven by the
hop's entity"): the name a hop gives is often not the bridge but the model's guess at the
final answer, or an entity the question already names (of the first 6 HotpotQA hops, 3
named a gold paragraph's subject, 2 of them named in the question; 3 were wrong guesses).
Either way the search with that name brings its paragraph, so the answer step can check
the guess against what the document says, and a wrong name costs one wasted search, not a
wrong premise for the final step as a wrong intermediate answer in the chained mode does.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from maestro_lite import (
    UNTRUSTED_RULE,
    Maestro,
    Message,
    Plan,
    Retriever,
    SearchHit,
    Step,
    Usage,
    UsageMeter,
    mark_untrusted,
    one_line,
)

from ._budget import ask

__all__ = ["Bridge", "bridge_messages", "clean_entity", "find_bridge", "hops_plan"]

MAX_ENTITY_CHARS = 80
"""A name longer than this is a sentence, not a name: it is cut."""

_EVIDENCE_CHARS = 4_000
"""Most characters of evidence one hop shows (about 1,000 tokens): the hop only names an
entity, and a short prompt keeps each hop a few seconds on a CPU."""


class Bridge(BaseModel):
    """What one hop returns."""

    entity: str = Field(
        description="Only a name (person, place, work, organisation, team, date) exactly as "
        "the evidence writes it, at most 8 words; empty if the evidence names none"
    )


_SYSTEM = (
    "You find the missing link of a question that needs several facts. Read the evidence and "
    "name the one entity that the question describes without naming it (for example the "
    "person, place, work or organisation it refers to by a description) and that must be "
    "identified before the question can be answered, exactly as the evidence writes it. "
    "Never name an entity listed as already found. If the question names everything it "
    "needs, or the evidence does not say, return an empty entity. " + UNTRUSTED_RULE
)


def bridge_messages(
    question: str, hits: Sequence[SearchHit], found: Sequence[str]
) -> list[Message]:
    """The messages of one hop: the question, the entities found so far and the evidence
    (titles and text, marked as data), cut to about a thousand tokens."""
    blocks: list[str] = []
    used = 0
    for hit in hits:
        chunk = hit.chunk
        name = one_line(chunk.title or chunk.path or chunk.document_id)
        block = f"[{name}]\n{' '.join(chunk.text.split())}"
        if blocks and used + len(block) > _EVIDENCE_CHARS:
            break
        blocks.append(block[:_EVIDENCE_CHARS])
        used += len(block)
    lines = [f"Question: {one_line(question)}"]
    if found:
        lines.append("Already found: " + "; ".join(one_line(f) for f in found))
    lines += ["Evidence:", mark_untrusted("\n\n".join(blocks), source="evidence")]
    return [Message.system(_SYSTEM), Message.user("\n".join(lines))]


def clean_entity(text: str) -> str:
    """A hop's answer as a search query: one line, quotes and a final full stop dropped,
    cut to :data:`MAX_ENTITY_CHARS`; empty when nothing is left."""
    flat = one_line(text).strip().strip("\"'`").rstrip(".").strip()
    return flat[:MAX_ENTITY_CHARS].strip()


async def find_bridge(
    maestro: Maestro,
    retriever: Retriever,
    question: str,
    *,
    found: Sequence[str],
    k: int,
    meter: UsageMeter,
) -> tuple[str, Usage]:
    """One hop: search with the question and the entities found so far, and ask the model
    for the next entity. Returns the entity (empty when the model names none, or names one
    already found) and the call's usage.

    Raises:
        BudgetExceeded: The call would break a limit of ``meter``.
        StructuredOutputError: The model never gave a valid answer.
    """
    hits = await retriever.search(" ".join([question, *found]), k=k, mode=maestro.search_mode)
    bridge, usage = await ask(
        maestro, bridge_messages(question, hits, found), Bridge, max_tokens=48, meter=meter
    )
    entity = clean_entity(bridge.entity)
    known = {f.casefold() for f in found} | {question.casefold()}
    return ("" if entity.casefold() in known else entity), usage


def hops_plan(
    question: str, entities: Sequence[str], *, k: int = 4, expected_output: str = ""
) -> Plan:
    """The one cited step that answers after the hops: it searches with the question and
    with each entity found (the paragraphs about them), and its instruction names the
    entities as leads to check against the evidence, not as facts."""
    unique = list(dict.fromkeys(entities))
    instruction = question
    if unique:
        leads = "; ".join(unique)
        instruction = (
            f"{question}\n(Leads from a first search, to check against the evidence: {leads}. "
            "Answer what the question asks, which may be another name.)"
        )
    return Plan(
        steps=[
            Step(
                id="answer",
                kind="answer",
                instruction=instruction,
                queries=list(dict.fromkeys([question, *unique])),
                k=k,
                expected_output=expected_output,
            )
        ],
        rationale="Hops named the entities the question hinges on; one cited answer from "
        "what the question and each entity retrieve.",
    )
