"""Fusion of dense and lexical rankings."""

from __future__ import annotations

import pytest

from maestro_lite.corpus import convex_fusion, reciprocal_rank_fusion


def test_convex_fusion_normalises_each_list() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    lexical = [("c", 30.0), ("b", 20.0), ("d", 10.0)]
    fused = dict(convex_fusion(dense, lexical, lexical_weight=0.5))
    # min-max: dense a=1, b=0.5, c=0; lexical c=1, b=0.5, d=0; a missing id counts as 0.
    assert fused == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.0})
    lexical_only = dict(convex_fusion(dense, lexical, lexical_weight=1.0))
    assert lexical_only == pytest.approx({"c": 1.0, "b": 0.5, "a": 0.0, "d": 0.0})
    dense_only = convex_fusion(dense, lexical, lexical_weight=0.0)
    assert next(id for id, _ in dense_only) == "a"


def test_convex_fusion_rewards_agreement_and_handles_ties_and_empties() -> None:
    dense = [("a", 1.0), ("b", 0.9), ("c", 0.0)]
    lexical = [("d", 10.0), ("b", 9.0), ("e", 0.0)]
    fused = convex_fusion(dense, lexical)
    # Nearly top in both beats top in one and absent from the other.
    assert fused[0] == ("b", pytest.approx(0.9))
    assert {id for id, _ in fused[1:3]} == {"a", "d"}
    assert convex_fusion([("x", 0.3)], []) == [("x", 0.5)]  # a one-item list scores 1
    assert convex_fusion([], []) == []
    with pytest.raises(ValueError):
        convex_fusion([], [], lexical_weight=1.5)


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([[("a", 9.0), ("b", 1.0)], [("b", 3.0), ("c", 2.0)]], k=60)
    assert fused[0] == ("b", pytest.approx(1 / 62 + 1 / 61))
    assert [id for id, _ in fused] == ["b", "a", "c"]
    weighted = reciprocal_rank_fusion([[("a", 1.0)], [("c", 1.0)]], weights=[1.0, 2.0])
    assert weighted[0][0] == "c"
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[("a", 1.0)]], weights=[1.0, 2.0])
