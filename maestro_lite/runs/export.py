"""A run's full trace as JSON Lines: the run, then every event as the orchestrator emitted it."""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..events import EVENT_ADAPTER, StepFailed, StepFinished, StepSkipped
from .base import RunStore

__all__ = ["export_run"]


def export_run(store: RunStore, run_id: str) -> Iterator[str]:
    """Lines of JSON (without newlines) for ``run_id``.

    The first line is ``{"kind": "run", "summary": ..., "spec": ...}``; every following line
    is one event, parseable with :data:`~maestro_lite.events.EVENT_ADAPTER`, step events with
    their full :class:`~maestro_lite.result.StepResult` (prompt, retrieved chunks, output,
    attempts).

    Raises:
        RunNotFound: No such run.
    """
    record = store.get(run_id)
    head = {
        "kind": "run",
        "summary": record.summary.model_dump(mode="json"),
        "spec": record.spec.model_dump(mode="json"),
    }
    yield json.dumps(head, ensure_ascii=False)
    results = {(s.round, s.step_id): s for s in record.steps}
    for event in store.events(run_id):
        if isinstance(event, StepFinished | StepFailed | StepSkipped) and event.result is None:
            result = results.get((event.round, event.step_id))
            if result is not None:
                event = event.model_copy(update={"result": result})
        yield EVENT_ADAPTER.dump_json(event).decode()
