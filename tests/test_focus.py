"""The sentences that matter: retrieved chunks cut down to what a step's question asks, by
word overlap, the kind of value asked for, and how near that value stands to the question."""

from __future__ import annotations

from maestro_lite.evidence import EvidencePool
from maestro_lite.focus import focus, score_sentences, value_note, value_sentences
from maestro_lite.plan import Step
from maestro_lite.retrieval import SearchFilter

from .evidence_pools import make_chunk, pool_of

# A lease, not a supply contract: the scoring knows nothing of any one kind of document.
LEASE_2021 = (
    "The monthly rent is $1,800, payable on the first day of each month. "
    "The tenant pays a security deposit of $3,600 before moving in. "
    "If the premises cannot be used for more than 45 consecutive days, either "
    "party may end this lease by written notice. "
    "Either party may end this lease by giving 60 days' written notice "
    "to the other party. "
    "No pets are allowed on the premises."
)
LEASE_2024 = (
    "The monthly rent is $2,050, payable on the first day of each month. "
    "Either party may end this lease by giving 30 days' written notice "
    "to the other party. The tenant may also end this lease early on 14 days' notice after "
    "a job relocation."
)


def _texts(pool: EvidencePool) -> list[str]:
    return [" ".join(item.text.split()) for item in pool.items]


def test_the_asked_value_next_to_the_question_word_ranks_first() -> None:
    pool = pool_of(make_chunk("l21", "Lease 2021", LEASE_2021))
    scored = score_sentences(pool.items, "notice period to end the lease")
    best = max(scored, key=lambda s: s.score)
    # "60 days' written notice" beats "45 consecutive days ... written notice", which also
    # states a duration and shares "end", "lease" and "notice".
    assert "60 days' written notice" in best.item.text
    repairs = next(s for s in scored if "45 consecutive days" in s.item.text)
    assert repairs.asked and best.score > repairs.score
    # A money figure is not what a notice period asks for.
    rent = next(s for s in scored if "$1,800" in s.item.text)
    assert rent.asked == ()


def test_focus_keeps_the_best_sentences_of_each_document_best_first_with_their_ids() -> None:
    pool = pool_of(
        make_chunk("l21", "Lease 2021", LEASE_2021), make_chunk("l24", "Lease 2024", LEASE_2024)
    )
    narrowed = focus(pool, "notice period to end the lease", per_document=2)
    texts = _texts(narrowed)
    assert len(texts) == 4  # two per document
    # Best first: the sentences stating a notice period to end the lease, of both documents.
    assert {t.split(" notice")[0] for t in texts[:3]} == {
        "Either party may end this lease by giving 60 days' written",
        "Either party may end this lease by giving 30 days' written",
        "The tenant may also end this lease early on 14 days'",
    }
    assert not any("pets" in t.lower() for t in texts)
    # Ids are those of the whole pool, so citations resolve as before.
    assert set(narrowed.ids) <= set(pool.ids)
    citations, unknown = narrowed.resolve(narrowed.ids)
    assert not unknown and {c.document_id for c in citations} == {"l21", "l24"}


def test_a_short_document_keeps_every_sentence_those_sharing_nothing_last() -> None:
    pool = pool_of(
        make_chunk("l21", "Lease 2021", LEASE_2021),
        make_chunk("misc", "Notes", "The weather was mild. Lunch was served at noon."),
    )
    narrowed = focus(pool, "security deposit amount", per_document=3)
    texts = _texts(narrowed)
    assert texts[0] == "The tenant pays a security deposit of $3,600 before moving in."
    assert "No pets are allowed on the premises." not in texts  # cut: the lease has five
    # The unrelated document keeps its sentences: it was retrieved on purpose.
    assert texts[-2:] == ["The weather was mild.", "Lunch was served at noon."]


def test_inherited_evidence_stays_first() -> None:
    pool = pool_of(make_chunk("l21", "Lease 2021", LEASE_2021))
    first = pool.ids[-1]
    narrowed = focus(pool, "monthly rent", keep=[first])
    assert narrowed.ids[0] == first


def test_a_fix_round_is_shown_which_sentences_hold_the_asked_kind_of_value() -> None:
    pool = pool_of(make_chunk("l24", "Lease 2024", LEASE_2024))
    found = value_sentences(pool, "notice period to end the lease")
    assert {s.asked for s in found} == {("30 days",), ("14 days",)}
    step = Step(
        id="s1",
        instruction="Find the notice period in the 2024 lease.",
        queries=["notice period end lease"],
        filters=SearchFilter(document_ids=["l24"]),
    )
    (note,) = value_note(step, pool, task="How did the notice period change?")
    ids = {item.id: " ".join(item.text.split()) for item in pool.items}
    thirty = next(i for i, t in ids.items() if "30 days" in t)
    assert f"- {thirty} states 30 days" in note
    # No kind of value asked: nothing to point at.
    pets = step.model_copy(update={"queries": ["pets"], "instruction": "Are pets allowed?"})
    assert value_note(pets, pool, task="Are pets allowed?") == []
