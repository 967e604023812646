"""``Maestro.override`` swaps the model or store for one task (and the tasks it starts),
never for concurrent runs of the same orchestrator elsewhere."""

from __future__ import annotations

import asyncio

from maestro_lite import Maestro
from maestro_lite.models import ModelCall
from maestro_lite.orchestrator import CorpusStore
from maestro_lite.retrieval import Retriever
from maestro_lite.testing import FunctionModel


def named(name: str) -> FunctionModel:
    def refuse(call: ModelCall) -> str:
        raise AssertionError("no call is made")

    return FunctionModel(refuse, name=name)


class Store:
    async def corpus(self, name: str) -> Retriever:
        raise AssertionError("not opened")


async def test_an_override_is_seen_by_its_task_and_the_tasks_it_starts_only() -> None:
    judge, planner = named("judge"), named("planner")
    maestro = Maestro(named("own"), planner_model=planner, judge_model=judge)
    entered, release = asyncio.Event(), asyncio.Event()
    seen: dict[str, tuple[str, object, object]] = {}

    def look(label: str) -> None:
        seen[label] = (maestro.model.name, maestro.planner_model, maestro.judge_model)

    async def swapped() -> None:
        with maestro.override(model=named("fake")):
            entered.set()
            await release.wait()  # the other task looks while this one is overridden
            look("inside")
            await asyncio.create_task(asyncio.to_thread(look, "started inside"))
        look("after")

    async def other() -> None:
        await entered.wait()
        look("other task")
        release.set()

    await asyncio.gather(swapped(), other())
    assert seen["inside"] == seen["started inside"] == ("fake", None, None)
    assert seen["other task"] == seen["after"] == ("own", planner, judge)


async def test_overrides_nest_and_a_corpora_swap_keeps_the_model() -> None:
    store: CorpusStore = Store()
    maestro = Maestro(named("own"))
    with maestro.override(model=named("outer")):
        with maestro.override(corpora=store):
            assert maestro.model.name == "outer" and maestro.corpora is store
        assert maestro.corpora is None
        with maestro.override(store=store):  # the old name still works
            assert maestro.store is maestro.corpora is store
    assert maestro.model.name == "own"
    assert Maestro(named("x"), store=store).corpora is store
