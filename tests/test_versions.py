"""What changed between two documents, clause by clause, found without a model; and an
answer held to stating each changed value of both sides."""

from __future__ import annotations

from maestro_lite.evidence import EvidencePool
from maestro_lite.versions import change_note, counterparts, diff, unstated

from .evidence_pools import make_chunk, pool_of

POLICY_V1 = (
    "Customers may return an item within 30 days of delivery for a full refund. "
    "Orders over $50 ship free within the country. "
    "We never sell customer data to third parties. "
    "This policy is governed by the laws of Ontario."
)
POLICY_V2 = (
    "Customers may return an item within 14 days of delivery for a full refund. "
    "Orders over $75 ship free within the country. "
    "We never sell customer data to third parties. "
    "This policy is governed by the laws of Quebec. "
    "Gift cards expire 24 months after purchase."
)


def _only(pool: EvidencePool, *needles: str) -> EvidencePool:
    items = [i for i in pool.items if any(n in i.text for n in needles)]
    return EvidencePool(items, pool.chunks)


V1 = make_chunk("v1", "Store policy v1", POLICY_V1)
V2 = make_chunk("v2", "Store policy v2", POLICY_V2)


def test_clauses_are_aligned_and_classified() -> None:
    changes = diff(pool_of(V1, V2), order=["v1", "v2"])
    by_kind: dict[str, list[str]] = {}
    for c in changes:
        by_kind.setdefault(c.kind, []).append(c.describe())
    changed = " | ".join(by_kind["changed"])
    assert "'30 days'" in changed and "'14 days'" in changed
    assert "'$50'" in changed and "'$75'" in changed
    # No value differs in the jurisdiction clause: the words that differ are the change.
    assert "'Ontario'" in changed and "'Quebec'" in changed
    assert any("never sell customer data" in d for d in by_kind["unchanged"])
    assert any("24 months" in d for d in by_kind["added"])
    # Changes come first in the note, each side with its id.
    note = change_note(changes)
    assert note.index("changed:") < note.index("unchanged:")
    assert "Store policy v1 [c1." in note and "Store policy v2 [c2." in note


def test_an_answer_must_state_both_values_of_each_change() -> None:
    refunds = _only(pool_of(V1, V2), "return an item")
    changes = diff(refunds, order=["v1", "v2"])
    assert [c.kind for c in changes] == ["changed"]
    assert unstated(changes, "The return window went from 30 days to 14 days.") == []
    (problem,) = unstated(changes, "The return window is now 14 days.")
    assert "does not state 30 days" in problem
    # Written another way, the same value counts.
    assert unstated(changes, "Returns: thirty days before, two weeks now.") == []


def test_when_nothing_changed_the_answer_must_say_so() -> None:
    privacy = _only(pool_of(V1, V2), "sell customer data")
    changes = diff(privacy, order=["v1", "v2"])
    assert [c.kind for c in changes] == ["unchanged"]
    assert unstated(changes, "Both policies never sell customer data.") == []
    assert unstated(changes, "The privacy clause is unchanged.") == []
    (problem,) = unstated(changes, "The privacy terms were rewritten.")
    assert "does not say it is unchanged" in problem


def test_a_counterpart_that_was_retrieved_but_not_cited_is_offered() -> None:
    # The comparing step inherits only what each document's step cited: v1's refund
    # sentence and v2's shipping sentence. v2's refund sentence was retrieved, not cited.
    cited = _only(pool_of(V1, V2), "within 30 days", "Orders over $75")
    extra = counterparts(cited, {"v1": [V1], "v2": [V2]}, start=len(cited) + 1)
    texts = {i.id: " ".join(i.text.split()) for i in extra.items}
    assert "Customers may return an item within 14 days of delivery for a full refund." in (
        texts.values()
    )
    assert "Orders over $50 ship free within the country." in texts.values()
    assert sorted(texts) == ["e3", "e4"]
    merged = cited.merged(extra)
    kinds = sorted(c.kind for c in diff(merged, order=["v1", "v2"]))
    assert kinds == ["changed", "changed"]


def test_three_periods_are_compared_each_with_the_next() -> None:
    quarters = [
        make_chunk(q, f"Call {q}", f"Gross margin for the quarter was {m}. We thank our staff.")
        for q, m in (("q1", "61.4%"), ("q2", "58.7%"), ("q3", "62.3%"))
    ]
    changes = diff(pool_of(*quarters), order=["q1", "q2", "q3"])
    changed = [c for c in changes if c.kind == "changed"]
    assert [[s.values for s in c.sides] for c in changed] == [
        [["61.4%"], ["58.7%"]],
        [["58.7%"], ["62.3%"]],
    ]
    assert unstated(changed, "Gross margin went from 61.4% to 58.7%, then 62.3%.") == []
    assert "does not state 62.3%" in " ".join(unstated(changed, "61.4% then 58.7%."))


def test_the_counterpart_is_the_closest_clause_not_any_related_one() -> None:
    # v2's step cited a different clause on the same subject (the shipping threshold next
    # to the refund window); the refund clause's own counterpart is still offered.
    v2 = make_chunk(
        "v2",
        "Store policy v2",
        "Customers may return an item within 14 days of delivery for a full refund. "
        "Customers may return an opened item within 7 days of delivery for store credit.",
    )
    cited = _only(pool_of(V1, v2), "within 30 days", "for store credit")
    extra = counterparts(cited, {"v1": [V1], "v2": [v2]}, start=3)
    assert [" ".join(i.text.split()) for i in extra.items if i.chunk.document_id == "v2"] == [
        "Customers may return an item within 14 days of delivery for a full refund."
    ]
    changed = [c for c in diff(cited.merged(extra), order=["v1", "v2"]) if c.kind == "changed"]
    assert [s.values for s in changed[0].sides] == [["30 days"], ["14 days"]]
    # Told, not required: an added clause need not be restated.
    assert unstated(changed, "Refunds: 30 days before, 14 days now.") == []


def test_where_one_side_states_a_value_the_values_are_what_is_required() -> None:
    none = make_chunk("v1", "Store policy v1", "Customers may not return opened items at all.")
    some = make_chunk(
        "v2", "Store policy v2", "Customers may return opened items within 7 days at all stores."
    )
    (change,) = diff(pool_of(none, some), order=["v1", "v2"])
    assert change.kind == "changed" and change.sides[1].values == ["7 days"]
    assert unstated([change], "Opened items could not be returned; now within 7 days.") == []
    assert "does not state 7 days" in unstated([change], "Returns are now allowed.")[0]


def test_a_reworded_clause_is_required_only_where_both_sides_name_something() -> None:
    old = make_chunk("v1", "Store policy v1", "Neither party may cancel an order once shipped.")
    new = make_chunk("v2", "Store policy v2", "The seller may not cancel an order once shipped.")
    (change,) = diff(pool_of(old, new), order=["v1", "v2"])
    assert change.kind == "changed" and not any(s.values for s in change.sides)
    assert unstated([change], "Orders cannot be cancelled after shipping.") == []
