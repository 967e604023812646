"""The sentences that matter: a step's retrieved evidence cut down to what its question asks.

Retrieval returns whole chunks; a chunk about termination also holds the force-majeure and
insolvency clauses next to it, each with its own figure. A 1.5B model shown forty such
sentences picks a figure from the wrong one. Here every evidence sentence is scored against
the step's question, without a model:

* the question's content words it holds (stemmed, see :func:`~maestro_lite.conflicts.terms`),
  each weighted by how rare it is among the candidate sentences;
* whether it states a value of the kind the question asks for ("how long", "notice period":
  a duration; "when": a date; "how much": money), see :func:`~maestro_lite.conflicts.asked_kinds`;
* how close that value stands to a word of the question ("90 days' written notice" for a
  notice period, rather than "100 consecutive days" three words before "terminate").

The best few sentences of each document are kept, best first, with the ids they had, so the
model cites them as before. Nothing here reads a document's name or subject: it is the same
arithmetic for any question and any corpus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .conflicts import asked_kinds, stem, terms, values
from .evidence import EvidenceItem, EvidencePool
from .plan import Step

__all__ = [
    "ScoredSentence",
    "focus",
    "focused",
    "score_sentences",
    "step_question",
    "value_note",
    "value_sentences",
]

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*|\d[\d,.]*")
_VALUE_BONUS = 0.35
"""Added (on a 0..1 scale of word overlap) for a value of the asked kind."""
_NEAR_BONUS = 0.5
"""Added for that value standing right next to a word of the question (less with distance)."""
_NEAR_WORDS = 6
"""Beyond this many words between a value and a question word, nearness counts for nothing."""
_KIND_WORDS = frozenset(
    stem(w)
    for w in "period duration length time date amount figure value number level rate "
    "percentage total sum".split()
)
"""Words that name the kind of value asked for, not its subject: in "the notice period" the
subject is "notice". They count little in the overlap and nothing for nearness (any
duration stands near "period": "a 12-month period")."""
_KIND_WEIGHT = 0.25


@dataclass(frozen=True)
class ScoredSentence:
    """An evidence sentence with how well it answers a question."""

    item: EvidenceItem
    score: float
    overlap: float
    """The share of the question's weighted words the sentence holds (0..1)."""
    asked: tuple[str, ...]
    """The values of the asked kind it states, as written ("90 days")."""


def _stems(text: str) -> list[str]:
    """The stems of ``text``'s words in order (numbers kept as they are): positions for
    nearness."""
    return [stem(w) if w[0].isalpha() else w for w in _WORD.findall(text)]


def _nearness(sentence: str, written: str, wanted: frozenset[str]) -> float:
    """1 when a question word stands next to the value, falling with each word between to
    0 beyond :data:`_NEAR_WORDS` (or when the value cannot be placed)."""
    at = sentence.find(written)
    if at < 0:
        return 0.0
    before = _stems(sentence[:at])
    after = _stems(sentence[at + len(written) :])
    gaps = [i for i, w in enumerate(reversed(before)) if w in wanted]
    gaps += [i for i, w in enumerate(after) if w in wanted]
    if not gaps:
        return 0.0
    gap = min(gaps)
    return max(0.0, 1.0 - gap / (_NEAR_WORDS + 1))


def score_sentences(
    items: Sequence[EvidenceItem], question: str, *, context: str = ""
) -> list[ScoredSentence]:
    """Every item scored against ``question`` (``context``, such as the overall task,
    counts at half weight), in the order given.

    Args:
        items: The candidate sentences.
        question: What the sentences should answer (a step's instruction and queries).
        context: Words that matter less (the run's task).
    """
    weights: dict[str, float] = dict.fromkeys(terms(context), 0.5)
    weights.update(dict.fromkeys(terms(question), 1.0))
    for w in _KIND_WORDS & weights.keys():
        weights[w] = _KIND_WEIGHT
    parsed = [terms(item.text) for item in items]
    n = len(items)
    df: dict[str, int] = {}
    for words in parsed:
        for w in words & weights.keys():
            df[w] = df.get(w, 0) + 1
    idf = {w: math.log(1 + n / (1 + f)) for w, f in df.items()}
    # The best any sentence could do: every question word that occurs in the candidates.
    most = sum(weights[w] * idf[w] for w in idf) or 1.0
    kinds = asked_kinds(f"{question} {context}")
    subject = frozenset(w for w, weight in weights.items() if weight == 1.0) - _KIND_WORDS
    wanted = frozenset(weights) - _KIND_WORDS
    out: list[ScoredSentence] = []
    for item, words in zip(items, parsed, strict=True):
        overlap = sum(weights[w] * idf[w] for w in words & weights.keys()) / most
        asked = tuple(v.written for v in values(item.text) if v.kind in kinds)
        score = overlap
        # A value counts only in a sentence about the question's subject: "1% per month"
        # of late interest is no answer to "price adjustment".
        if asked and words & subject:
            near = max(_nearness(item.text, written, wanted) for written in asked)
            score += _VALUE_BONUS + _NEAR_BONUS * near
        out.append(ScoredSentence(item, score, overlap, asked))
    return out


def focus(
    pool: EvidencePool,
    question: str,
    *,
    context: str = "",
    per_document: int = 8,
    keep: Sequence[str] = (),
) -> EvidencePool:
    """``pool`` cut down to the ``per_document`` best sentences of each document for
    ``question``, best first, ids unchanged. A document with fewer sentences keeps them all
    (those that share no word with the question last): a sentence that names only the
    entity a matching one is about ("X is based in Y") may be the next hop of the answer.
    Items whose id is in ``keep`` (evidence inherited from earlier steps) stay first, in
    their order.
    """
    kept = [item for item in pool.items if item.id in set(keep)]
    candidates = [item for item in pool.items if item.id not in set(keep)]
    if not candidates:
        return pool
    scored = score_sentences(candidates, question, context=context)
    by_document: dict[str, list[ScoredSentence]] = {}
    for s in scored:
        by_document.setdefault(s.item.chunk.document_id, []).append(s)
    chosen: list[ScoredSentence] = []
    for sentences in by_document.values():
        ranked = sorted(sentences, key=lambda s: -s.score)  # stable: ties keep text order
        chosen += ranked[:per_document]
    chosen.sort(key=lambda s: -s.score)
    items = kept + [s.item for s in chosen]
    used = {item.chunk.id for item in items}
    return EvidencePool(items, [c for c in pool.chunks if c.id in used])


def value_sentences(
    pool: EvidencePool, question: str, *, context: str = "", limit: int = 4
) -> list[ScoredSentence]:
    """The sentences of ``pool`` that state a value of the kind ``question`` asks for, best
    first: what a fix round is shown when its answer stated a figure its evidence lacks."""
    scored = score_sentences(pool.items, question, context=context)
    found = [s for s in scored if s.asked]
    return sorted(found, key=lambda s: -s.score)[:limit]


def step_question(step: Step, task: str) -> tuple[str, str]:
    """``(question, context)`` of a step for scoring: its search queries (what retrieval
    looked for), else its instruction; the instruction, expected output and the run's task
    are context."""
    question = " ".join(step.queries) or step.instruction
    context = " ".join(part for part in (step.instruction, step.expected_output, task) if part)
    return question, context


def focused(
    step: Step, pool: EvidencePool, *, task: str, per_document: int, keep: Sequence[str] = ()
) -> EvidencePool:
    """:func:`focus` of a step's evidence on the step's own question."""
    question, context = step_question(step, task)
    return focus(pool, question, context=context, per_document=per_document, keep=keep)


def value_note(step: Step, pool: EvidencePool, *, task: str) -> list[str]:
    """For a step re-run after failed checks: which of its sentences state the kind of value
    it asks for, with those values, so a fix can take a figure from the right sentence.
    Empty when the question asks for no kind of value or no sentence states one."""
    question, context = step_question(step, task)
    found = value_sentences(pool, question, context=context)
    if not found:
        return []
    lines = ["Sentences of the evidence above that state the kind of value asked for:"]
    for s in found:
        shown = ", ".join(dict.fromkeys(" ".join(v.split()) for v in s.asked))
        lines.append(f"- {s.item.id} states {shown}")
    lines.append(
        "Take each figure from the sentence that states it, cite that sentence, and say what "
        "the figure is for as that sentence does."
    )
    return ["\n".join(lines)]
