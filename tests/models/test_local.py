"""The local adapter with the real 0.5B GGUF model through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from maestro_lite import (
    Message,
    ModelIntegrityError,
    ModelNotAvailable,
    ModelSettings,
    Settings,
    generate,
    model_from_settings,
)
from maestro_lite.models.local import LocalModel

pytestmark = pytest.mark.local_model


class Address(BaseModel):
    city: str
    country_code: str = Field(description="ISO 3166 alpha-2 code")


class Person(BaseModel):
    name: str
    age: int
    role: Literal["engineer", "manager", "analyst"]
    addresses: list[Address] = Field(description="Every place the person lived")


async def test_nested_schema_comes_back_valid(local_model: LocalModel) -> None:
    text = (
        "Anna Berg, 41, manages the Oslo office of Northwind. She previously lived in "
        "Bergen, Norway."
    )
    result = await generate(
        local_model, [Message.user(f"Extract the person from: {text}")], output_type=Person
    )
    person = result.output
    assert isinstance(person, Person)
    assert person.name == "Anna Berg"
    assert person.age == 41
    assert person.addresses and all(a.city for a in person.addresses)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.model == "local:qwen2.5-coder-0.5b"


class Token(BaseModel):
    """A shape no model would produce unprompted."""

    zqx_code: Literal["XK-17", "QP-99"]
    flags: list[Literal["amber", "teal"]]


async def test_grammar_enforces_the_schema_even_against_the_prompt(
    local_model: LocalModel,
) -> None:
    """Asked for French prose, the model still emits the schema's JSON: the grammar, not the
    prompt, decides. Without a schema the same request gives prose: the contrast proves it."""
    request = [Message.user("Say hello in French, in one short sentence.")]
    settings = ModelSettings(max_tokens=60)
    free = await local_model.request(request, json_schema=None, settings=settings)
    with pytest.raises(ValueError):
        json.loads(free.text)
    forced = await local_model.request(
        request, json_schema=Token.model_json_schema(), settings=settings
    )
    token = Token.model_validate_json(forced.text)
    assert token.zqx_code in ("XK-17", "QP-99")


def test_a_path_to_any_gguf_is_accepted(small_model_path: Path) -> None:
    settings = Settings(local_model=str(small_model_path))
    model = model_from_settings(settings)
    assert isinstance(model, LocalModel)
    assert model.resolve_path() == small_model_path
    assert model.name == "local:qwen2.5-coder-0.5b"


def test_a_missing_or_non_gguf_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        LocalModel(tmp_path / "nope.gguf").resolve_path()
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(ModelIntegrityError, match="not a GGUF"):
        LocalModel(fake).resolve_path()


def test_a_registry_name_needs_a_registry() -> None:
    with pytest.raises(ModelNotAvailable, match="registry"):
        LocalModel("qwen2.5-coder-0.5b")


class Bounded(BaseModel):
    summary: str = Field(max_length=1500)
    points: list[str] = Field(max_length=50)


async def test_length_bounds_do_not_reach_the_grammar(local_model: LocalModel) -> None:
    """llama-cpp-python compiles maxLength into nested rules that llama.cpp rejects and then
    crashes on; the adapter keeps such bounds out of the grammar (pydantic enforces them)."""
    from maestro_lite.models.local import grammar_safe

    schema = Bounded.model_json_schema()
    safe = grammar_safe(schema)
    assert "maxLength" not in str(safe) and "maxItems" not in str(safe)
    assert schema["properties"]["summary"]["maxLength"] == 1500  # the original is untouched
    result = await generate(
        local_model,
        [Message.user("Summarise: the notice period fell from 90 to 60 days.")],
        output_type=Bounded,
        settings=ModelSettings(max_tokens=200),
    )
    assert isinstance(result.output, Bounded)


async def test_a_call_sharing_a_prefix_resumes_from_a_saved_state_after_another_call(
    local_model: LocalModel,
) -> None:
    """The prefix cache: a call that starts like an earlier one loads that call's state,
    even with a different call in between (llama.cpp alone keeps only the last prompt)."""
    await local_model.load()
    llama = local_model._llama
    llama.reset()  # the model is shared by the session: start from no saved states
    llama.cache.cache_state.clear()
    evidence = " ".join(f"c{n}.s1: The part number MCB-{n} ships from Penang." for n in range(40))
    settings = ModelSettings(max_tokens=4)
    loaded: list[int] = []
    original = llama.load_state

    def counting(state: object) -> None:
        loaded.append(1)
        original(state)

    llama.load_state = counting
    try:
        await local_model.request(
            [Message.system(evidence), Message.user("Which part?")],
            json_schema=None,
            settings=settings,
        )
        await local_model.request([Message.user("Say hi.")], json_schema=None, settings=settings)
        assert loaded == []
        await local_model.request(
            [Message.system(evidence), Message.user("Where from?")],
            json_schema=None,
            settings=settings,
        )
    finally:
        llama.load_state = original
    assert loaded == [1]
    assert len(llama.cache.cache_state) <= local_model.prefix_cache
