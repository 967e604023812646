"""The response cache: identical calls are answered without calling the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from maestro_lite import Message, ModelSettings, ResponseCache, generate
from maestro_lite.models import CachedModel, FallbackModel, FunctionModel, ScriptedModel
from maestro_lite.orchestrator import Maestro

from .orchestration.conftest import MemoryRetriever, contracts
from .runs.conftest import fix_then_replan_model

__all__ = ["contracts"]


class City(BaseModel):
    name: str


def test_the_key_covers_what_determines_the_answer_and_nothing_else() -> None:
    key = ResponseCache.key
    messages = [Message.user("capital of Norway?")]
    schema = City.model_json_schema()
    base = key("m", messages, schema, ModelSettings(temperature=0))
    assert base == key("m", list(messages), dict(schema), ModelSettings(temperature=0))
    assert base == key("m", messages, schema, ModelSettings(temperature=0, timeout=5))
    for other in (
        key("other", messages, schema, ModelSettings(temperature=0)),
        key("m", [Message.user("capital of Sweden?")], schema, ModelSettings(temperature=0)),
        key("m", [Message.system("capital of Norway?")], schema, ModelSettings(temperature=0)),
        key("m", messages, None, ModelSettings(temperature=0)),
        key("m", messages, schema, ModelSettings(temperature=0.2, seed=1)),
        key("m", messages, schema, ModelSettings(temperature=0, max_tokens=10)),
    ):
        assert other != base


def test_one_model_name_on_two_endpoints_or_two_files_never_shares_answers(
    tmp_path: Path,
) -> None:
    from maestro_lite.models import LocalModel, OpenAIModel, cache_identity

    cache = ResponseCache()
    call = ([Message.user("capital of Norway?")], None, ModelSettings(temperature=0))
    here = OpenAIModel("llama", base_url="http://127.0.0.1:8001/v1")
    there = OpenAIModel("llama", base_url="http://127.0.0.1:8002/v1")
    assert here.name == there.name  # usage records still name the model alike
    assert CachedModel(here, cache).key(*call) != CachedModel(there, cache).key(*call)
    default = cache_identity(OpenAIModel("llama", api_key="k"))  # OpenAI's own endpoint
    assert default.startswith("openai:llama@") and default not in {
        cache_identity(here),
        cache_identity(there),
    }

    first, second = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for path, body in ((first, b"GGUF one"), (second, b"GGUF two, longer")):
        path.parent.mkdir()
        path.write_bytes(body)
    assert LocalModel(first).name == LocalModel(second).name == "local:model"
    assert cache_identity(LocalModel(first)) != cache_identity(LocalModel(second))
    chain = FallbackModel(here, LocalModel(first))
    assert (
        cache_identity(chain)
        == f"fallback:{cache_identity(here)},{cache_identity(LocalModel(first))}"
    )
    assert CachedModel(chain, cache).key(*call) != CachedModel(
        FallbackModel(there, LocalModel(first)), cache
    ).key(*call)


async def test_a_repeated_call_is_answered_from_disk_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    model = ScriptedModel(["not json", {"name": "Oslo"}])
    first = await generate(
        CachedModel(model, ResponseCache(path)), [Message.user("q")], output_type=City
    )
    assert first.output.name == "Oslo" and first.usage.reasks == 1

    again = ScriptedModel([])  # any call would fail: it has no answers
    second = await generate(
        CachedModel(again, ResponseCache(path)), [Message.user("q")], output_type=City
    )
    # The accepted answer of the whole call (after its re-ask) was kept.
    assert second.output == first.output and second.model == "scripted"
    assert second.usage.requests == 0 and second.usage.cached_requests == 1
    assert [a.outcome for a in second.attempts] == ["cached"]
    assert again.calls == []


async def test_sampled_calls_are_not_served_from_the_cache_unless_asked() -> None:
    answers = iter(["first", "second", "third"])
    model = FunctionModel(lambda call: next(answers))
    sampled = ModelSettings(temperature=0.8)
    cache = ResponseCache()
    for expected in ("first", "second"):
        done = await generate(CachedModel(model, cache), [Message.user("poem")], settings=sampled)
        assert done.output == expected
    seeded = ModelSettings(temperature=0.8, seed=7)
    once = await generate(CachedModel(model, cache), [Message.user("poem")], settings=seeded)
    twice = await generate(CachedModel(model, cache), [Message.user("poem")], settings=seeded)
    assert once.output == twice.output == "third"

    keep_all = ResponseCache(include_sampled=True)
    model = FunctionModel(lambda call: "kept")
    for _ in range(2):
        await generate(CachedModel(model, keep_all), [Message.user("poem")], settings=sampled)
    assert len(model.calls) == 1 and keep_all.hits == 1


async def test_rerunning_an_identical_run_makes_no_model_calls(
    contracts: MemoryRetriever,
) -> None:
    cache = ResponseCache()
    model = fix_then_replan_model()
    maestro = Maestro(model, cache=cache)
    args: dict[str, Any] = {"corpus": contracts, "requirements": ["cover the governing law"]}
    first = await maestro.run("Compare the two versions", **args)
    calls = len(model.calls)
    assert first.usage.requests == calls
    # The fix round's synthesis says the same as round 1's: its judging was already cached.
    assert first.usage.cached_requests == 1

    second = await maestro.run("Compare the two versions", **args)
    assert len(model.calls) == calls  # not one call
    assert second.output_text == first.output_text and second.status == first.status
    assert second.usage.requests == 0 and second.usage.cached_requests == calls + 1
    assert [r.decision for r in second.rounds] == [r.decision for r in first.rounds]

    third = await maestro.run("Compare the two versions", cache=False, **args)
    assert len(model.calls) == 2 * calls + 1 and third.usage.cached_requests == 0


async def test_a_cache_inside_a_fallback_chain_answers_per_model() -> None:
    cache = ResponseCache()
    primary = FunctionModel(lambda call: "from primary", name="primary")
    chain = FallbackModel(CachedModel(primary, cache), ScriptedModel([]))
    first = await generate(chain, [Message.user("hi")])
    second = await generate(chain, [Message.user("hi")])
    assert first.output == second.output == "from primary"
    assert len(primary.calls) == 1
    assert second.usage.requests == 0 and second.usage.cached_requests == 1
    assert [a.outcome for a in second.attempts] == ["cached"]


async def test_maestro_from_settings_records_caches_and_shares_limits(tmp_path: Path) -> None:
    from maestro_lite import Corpus, Settings, SQLiteRunStore

    from .orchestration.conftest import V1, V2

    settings = Settings(home=tmp_path / "home", embedder="hashing", max_concurrent=2)
    (tmp_path / "agreement_2023.txt").write_text(V1)
    (tmp_path / "agreement_2025.txt").write_text(V2)
    async with await Corpus.open("contracts", settings=settings) as corpus:
        report = await corpus.ingest(
            [tmp_path / "agreement_2023.txt", tmp_path / "agreement_2025.txt"]
        )
        assert len(report.ingested) == 2
    model = fix_then_replan_model()
    args: dict[str, Any] = {"corpus": "contracts", "requirements": ["cover the governing law"]}
    async with Maestro.from_settings(settings, model=model) as maestro:
        first = await maestro.run("Compare the two versions", **args)
        calls = len(model.calls)
        assert first.status == "passed" and calls > 0
        other = Maestro.from_settings(settings, model=model)
        assert other.limiter is maestro.limiter is not None  # one limiter per process
        await other.aclose()
    # A new orchestrator from the same settings: the run is on record, the calls cached.
    async with Maestro.from_settings(settings, model=model) as again:
        second = await again.run("Compare the two versions", **args)
    assert len(model.calls) == calls and second.usage.requests == 0
    assert second.usage.cached_requests > 0 and second.status == "passed"
    with SQLiteRunStore.open(settings) as store:
        assert {first.run_id, second.run_id} <= {r.run_id for r in store.list()}
