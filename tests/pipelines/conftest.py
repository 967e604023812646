"""Fixtures for pipeline tests: documents in memory and a model routed by schema title."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from maestro_lite import Chunk
from maestro_lite.testing import FunctionModel, ModelCall

from ..orchestration.conftest import MemoryRetriever, cite, evidence, step_of

__all__ = ["MemoryRetriever", "chunk", "cite", "evidence", "routed", "step_of"]

Handler = Callable[[ModelCall], Any]


def chunk(doc: str, title: str, text: str, *, page: int = 1, index: int = 0) -> Chunk:
    """A chunk that is a whole page of a document."""
    return Chunk(
        id=f"{doc}:{index}",
        document_id=doc,
        index=index,
        text=text,
        page=page,
        start=0,
        end=len(text),
        doc_start=0,
        doc_end=len(text),
        title=title,
        path=f"/docs/{doc}.pdf",
    )


def routed(**handlers: Handler) -> FunctionModel:
    """A model answering each request with the handler named after its schema's title
    (``PlanDraft``, ``StepAnswer``, ``Verdicts``...); ``default`` takes the rest."""

    def route(call: ModelCall) -> Any:
        title = call.schema_title or ""
        handler = handlers.get(title) or handlers.get("default")
        assert handler is not None, f"no handler for schema {title!r}"
        return handler(call)

    return FunctionModel(route, name="routed")


def all_met(call: ModelCall) -> dict[str, Any]:
    """A judge that finds every requirement met."""
    ids = re.findall(r"^(\w+): ", call.last_user.split("Requirements:\n", 1)[1], re.MULTILINE)
    return {i: {"reason": "it does", "verdict": "met"} for i in ids}


@pytest.fixture
def judge_all_met() -> Handler:
    return all_met
