"""Planner repairs that need no model call."""

from __future__ import annotations

from maestro_lite.plan import Step
from maestro_lite.planner import _rename_collisions, _with_final


def _s(sid: str, *deps: str) -> Step:
    return Step(id=sid, instruction=sid, depends_on=list(deps), queries=["q"])


def test_new_steps_reusing_a_kept_id_are_renamed_with_their_references() -> None:
    kept = {"s1": _s("s1")}
    new = [_s("s1"), _s("s2", "s1")]  # the model redefined s1 and means its own
    renamed = _rename_collisions(new, kept)
    assert [s.id for s in renamed] == ["s3", "s2"]
    assert renamed[1].depends_on == ["s3"]


def test_references_to_kept_steps_stay_when_there_is_no_collision() -> None:
    kept = {"s1": _s("s1")}
    new = [_s("s4", "s1")]
    assert _rename_collisions(new, kept) == new


def test_several_final_steps_get_a_synthesis() -> None:
    steps = _with_final([_s("a"), _s("b")])
    assert steps[-1].kind == "synthesize" and steps[-1].depends_on == ["a", "b"]
