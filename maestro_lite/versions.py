"""What changed between documents, sentence by sentence, found without a model.

A comparison step sees what each document's step cited and must say what changed. A 1.5B
model reads "90 days" in one version and "60 days" in the other and writes "unchanged", or
calls two identical clauses different. Aligning the sentences does better: a sentence of one
document and its closest counterpart in the other (most content words shared) are the same
clause; the clause is unchanged when the two read alike, changed when their values (dates,
money, durations, percentages; see :func:`~maestro_lite.conflicts.values`) or their words
differ, and a cited sentence with no counterpart was added or removed.

The executor shows these findings to a ``compare`` step before it answers (see
:func:`change_note`), offering the counterpart sentences a dependency retrieved but did not
cite, so both sides can be cited; the validator checks that the answer states each changed
value of both sides (see :func:`unstated`). Nothing here calls a model or knows what the
documents are about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

from .changes import Change, ChangeSide, cite
from .conflicts import terms, values
from .documents.model import Chunk
from .evidence import EvidenceItem, EvidencePool, sentence_spans

__all__ = ["change_note", "counterparts", "diff", "unstated"]

_MIN_SHARED = 3
"""Content words two sentences must share to be the same clause."""
_MIN_JACCARD = 0.3
_MIN_COVER = 0.6
"""Share of the shorter sentence's content words the longer one holds."""
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\$?\d[\d,.]*%?")
_SAME_WORDS = re.compile(
    r"\b(?:same|unchanged|identical|no change|not change|did not change|does not change|"
    r"remain\w*|both)\b",
    re.IGNORECASE,
)


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _similar(a: frozenset[str], b: frozenset[str]) -> float:
    """How surely two sentences are the same clause (0 when they are not)."""
    shared = len(a & b)
    if shared < _MIN_SHARED or not a or not b:
        return 0.0
    jaccard = shared / len(a | b)
    cover = shared / min(len(a), len(b))
    return jaccard if jaccard >= _MIN_JACCARD or cover >= _MIN_COVER else 0.0


def _value_set(text: str) -> dict[tuple[str, float], str]:
    return {(v.kind, v.key): " ".join(v.written.split()) for v in values(text)}


def _words_only(text: str, other: str) -> list[str]:
    """Runs of ``text``'s words that ``other`` lacks (capitalised runs kept together)."""
    theirs = {w.lower().strip(".,;:()") for w in _WORD.findall(other)}
    runs: list[str] = []
    current: list[str] = []
    for word in _WORD.findall(text):
        if word.lower().strip(".,;:()") in theirs:
            if current:
                runs.append(" ".join(current))
                current = []
        else:
            current.append(word.strip(".,;:()"))
    if current:
        runs.append(" ".join(current))
    return [r for r in runs if r][:4]


def _side(item: EvidenceItem, other: str | None) -> ChangeSide:
    mine = _value_set(item.text)
    theirs = _value_set(other) if other is not None else {}
    differing = [w for k, w in mine.items() if k not in theirs]
    words = _words_only(item.text, other) if other is not None and not differing else []
    return ChangeSide(
        document_id=item.chunk.document_id,
        title=item.chunk.title,
        ref=item.id,
        sentence=item.text,
        values=differing,
        words=words,
    )


def diff(pool: EvidencePool, order: Sequence[str] = ()) -> list[Change]:
    """The clauses of ``pool``'s documents, each consecutive pair (in ``order``, else as
    they come) compared: each sentence aligned with its closest counterpart in the next
    document. Changes come first.

    Args:
        pool: Evidence of two or more documents.
        order: Document ids, earlier first (the comparison's order).
    """
    by_document: dict[str, list[EvidenceItem]] = {}
    for item in pool.items:
        by_document.setdefault(item.chunk.document_id, []).append(item)
    documents = [d for d in order if d in by_document] or list(by_document)
    changes: list[Change] = []
    for first, second in pairwise(documents):
        changes += _pair(by_document[first], by_document[second])
    # Changes first: they are what the comparison must not miss.
    rank = {"changed": 0, "added": 1, "removed": 2, "unchanged": 3}
    return sorted(changes, key=lambda c: rank[c.kind])


def _pair(earlier: Sequence[EvidenceItem], later: Sequence[EvidenceItem]) -> list[Change]:
    """The clauses of two documents, aligned."""
    pairs: list[tuple[float, int, int]] = []
    words_a = [terms(i.text) for i in earlier]
    words_b = [terms(i.text) for i in later]
    for i, wa in enumerate(words_a):
        for j, wb in enumerate(words_b):
            score = _similar(wa, wb)
            if score > 0:
                pairs.append((score, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    matched_a: dict[int, int] = {}
    matched_b: set[int] = set()
    for _, i, j in pairs:
        if i not in matched_a and j not in matched_b:
            matched_a[i] = j
            matched_b.add(j)
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for i, a in enumerate(earlier):
        if i not in matched_a:
            if values(a.text):
                changes.append(Change(kind="removed", sides=[_side(a, None)]))
            continue
        b = later[matched_a[i]]
        key = (_norm(a.text), _norm(b.text))
        if key in seen:
            continue
        seen.add(key)
        if key[0] == key[1]:
            changes.append(Change(kind="unchanged", sides=[_side(a, b.text), _side(b, a.text)]))
        else:
            changes.append(Change(kind="changed", sides=[_side(a, b.text), _side(b, a.text)]))
    for j, b in enumerate(later):
        if j not in matched_b and values(b.text):
            changes.append(Change(kind="added", sides=[_side(b, None)]))
    return changes


def counterparts(
    pool: EvidencePool, retrieved: Mapping[str, Sequence[Chunk]], *, start: int
) -> EvidencePool:
    """Sentences that the steps before a comparison retrieved but did not cite, each the
    closest counterpart of a cited sentence of another document (numbered ``e<start>``...),
    so that both sides of a clause can be compared and cited.

    Args:
        pool: The cited evidence the comparing step inherits.
        retrieved: Chunks retrieved per document id.
        start: The number of the first new id.
    """
    cited: dict[str, list[EvidenceItem]] = {}
    for item in pool.items:
        cited.setdefault(item.chunk.document_id, []).append(item)
    # Overlapping chunks repeat sentences: a sentence is offered once, whatever its chunk.
    taken = {_norm(i.text) for i in pool.items}
    new: list[EvidenceItem] = []
    chunks: dict[str, Chunk] = {}
    n = start
    for document, chunk_list in retrieved.items():
        sentences = [
            (chunk, s, e, terms(chunk.text[s:e]))
            for chunk in chunk_list
            for s, e in sentence_spans(chunk.text)
        ]
        for other, items in cited.items():
            if other == document:
                continue
            for item in items:
                target = terms(item.text)
                best: tuple[float, Chunk, int, int] | None = None
                for chunk, s, e, words in sentences:
                    score = _similar(target, words)
                    if score > 0 and (best is None or score > best[0]):
                        best = (score, chunk, s, e)
                if best is None or _norm(best[1].text[best[2] : best[3]]) in taken:
                    continue  # no counterpart, or it is offered already
                _, chunk, s, e = best
                taken.add(_norm(chunk.text[s:e]))
                new.append(EvidenceItem(id=f"e{n}", chunk=chunk, start=s, end=e))
                chunks[chunk.id] = chunk
                n += 1
    return EvidencePool(new, list(chunks.values()))


def change_note(changes: Sequence[Change]) -> str:
    """What a comparing step is told before it answers."""
    lines = ["Note: comparing the documents' sentences found (check them against the evidence):"]
    lines += [f"- {c.describe()}" for c in changes]
    if any(c.kind != "unchanged" for c in changes):
        lines.append(
            "Your answer must give, for each change, the value of each document with its "
            "evidence id, and say plainly what stayed the same."
        )
    else:
        lines.append("Your answer must say that these terms are the same in the documents.")
    return "\n".join(lines)


def _states(answer: str, written: str) -> bool:
    lowered = " ".join(answer.lower().split())
    if written.lower() in lowered:
        return True
    wanted = values(written)
    if not wanted:
        return False
    found = {(v.kind, v.key) for v in values(answer)}
    return all((v.kind, v.key) in found for v in wanted)


def _names(side: ChangeSide) -> list[str]:
    """The differing words of a side that name something (a capitalised word other than the
    sentence's first: "New York", not "Neither" or "not"): a wording change is required of
    an answer only where both sides name something different."""
    first = next(iter(_WORD.findall(side.sentence)), "")
    out = []
    for run in side.words:
        words = run.split()
        if any(w[0].isupper() and not (i == 0 and w == first) for i, w in enumerate(words)):
            out.append(run)
    return out


def unstated(changes: Iterable[Change], answer: str) -> list[str]:
    """What ``answer`` leaves out of ``changes``: for each changed clause, the values that
    differ, of both sides (or, where no value differs, a differing name of each side); and,
    when nothing changed, that it says so. Added and removed clauses are told to the step,
    not required of it. Empty when the answer tells what is required."""
    changes = list(changes)
    problems: list[str] = []
    for change in changes:
        if change.kind != "changed":
            continue
        by_value = any(side.values for side in change.sides)
        named = [_names(side) for side in change.sides]
        for side, names in zip(change.sides, named, strict=True):
            if by_value:
                missing = [v for v in side.values if not _states(answer, v)]
                if missing:
                    problems.append(
                        f"changed clause: the answer does not state {', '.join(missing)} "
                        f"({cite(side)})"
                    )
            elif all(named) and not any(_states(answer, w) for w in names):
                problems.append(
                    f"changed clause: the answer does not say what {cite(side)} says "
                    f"({', '.join(names)})"
                )
    if changes and all(c.kind == "unchanged" for c in changes) and not _SAME_WORDS.search(answer):
        problems.append(
            "the documents say the same on this, and the answer does not say it is unchanged"
        )
    return problems
