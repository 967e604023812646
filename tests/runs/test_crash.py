"""A real process killed with SIGKILL mid-run, then resumed: finished work is not paid twice.

The endpoint runs in this process and the run in a child process. The server holds the
request the test chose (the child is then waiting on it, with everything before it
checkpointed); the test kills the child, and resumes the run here against the same server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.models import OpenAIModel
from maestro_lite.orchestrator import Maestro
from maestro_lite.result import RunResult
from maestro_lite.runs import SQLiteRunStore
from maestro_lite.testing import OpenAICompatibleServer

from .conftest import fix_then_replan_model, over_http, unit_of
from .crash_child import REQUIREMENTS, TASK, contracts

ROOT = Path(__file__).resolve().parents[2]

# The scenario's calls, in order: plan, s1, s2, s3, judge, fix s3, judge, replan, s4, s5,
# s6, judge. The child is killed while the server holds each of these.
KILL_AT = [
    "step:Notice period in the 2025 version",  # round 1, one step checkpointed
    "judge:Notice fell from 90 days (2023) to 60 days (2025).",  # round 1 judged
    "replan",  # two rounds decided
    "step:Summarise notice and law",  # round 3, the last step
]


class Gate:
    """Answers like the scenario's model, except that it holds the first request for
    ``unit`` until released."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.held = threading.Event()
        self.release = threading.Event()
        self.answer = over_http(fix_then_replan_model())

    def __call__(self, body: dict[str, Any]) -> str | dict[str, Any]:
        if unit_of(body) == self.unit and not self.held.is_set():
            self.held.set()
            self.release.wait(timeout=60)
        return self.answer(body)


@pytest.fixture(scope="module")
def baseline() -> tuple[str, list[str]]:
    """The output and the request units of the run when nothing goes wrong."""

    async def clean() -> tuple[str, list[str]]:
        with OpenAICompatibleServer(over_http(fix_then_replan_model())) as server:
            async with OpenAIModel("test-model", base_url=server.base_url) as model:
                result = await Maestro(model, concurrency=1).run(
                    TASK, corpus=contracts(), requirements=REQUIREMENTS
                )
        assert result.status == "passed"
        return result.output_text, [unit_of(b) for b in server.requests]

    return asyncio.run(clean())


async def resume(db: Path, base_url: str, concurrency: int = 1) -> RunResult:
    """Resume run ``r`` in this process, as ``maestro resume r`` would."""
    store = SQLiteRunStore(db)
    assert store.get("r").status == "running"  # the child had no chance to record more
    async with OpenAIModel("test-model", base_url=base_url) as model:
        maestro = Maestro(model, concurrency=concurrency, run_store=store)
        return await maestro.resume("r", corpus=contracts())


@contextmanager
def child_run(
    db: Path, base_url: str, gate: Gate, concurrency: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """The scenario's run in a child process; whatever happens, it is gone afterwards and the
    request the gate holds is released."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.runs.crash_child", str(db), base_url, "r", str(concurrency)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        gate.release.set()


def kill(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.parametrize("unit", KILL_AT)
def test_a_run_killed_mid_run_resumes_without_repeating_finished_calls(
    unit: str, baseline: tuple[str, list[str]], tmp_path: Path
) -> None:
    expected_output, expected_units = baseline
    assert unit in expected_units
    db = tmp_path / "runs.sqlite3"
    gate = Gate(unit)
    with OpenAICompatibleServer(gate) as server:
        with child_run(db, server.base_url, gate) as child:
            assert gate.held.wait(timeout=120), "the child never reached the kill point"
            kill(child)
        before = [unit_of(b) for b in server.requests]
        assert before[-1] == unit  # the call in flight when it died

        result = asyncio.run(resume(db, server.base_url))
        after = [unit_of(b) for b in server.requests[len(before) :]]

    assert result.status == "passed" and result.output_text == expected_output
    # Counted at the server: every call of the run was made once, except the one the
    # process died waiting for, which had not finished.
    assert before + after[1:] == expected_units
    assert after[0] == unit
    # Usage counts every recorded attempt of both processes.
    assert result.usage.requests == len(before) - 1 + len(after)


def finished_steps(db: Path) -> set[str]:
    with SQLiteRunStore(db) as store:
        return {s.step_id for s in store.get("r").steps if s.status == "done"}


def test_a_parallel_run_killed_with_steps_finished_and_in_flight_resumes_once_each(
    baseline: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Two steps run at once: the child is killed once s1 is checkpointed while s2 is in
    flight. The resume, also parallel, asks for s2 once more and never for s1."""
    expected_output, expected_units = baseline
    held = "step:Notice period in the 2025 version"
    db = tmp_path / "runs.sqlite3"
    gate = Gate(held)
    with OpenAICompatibleServer(gate) as server:
        with child_run(db, server.base_url, gate, concurrency=2) as child:
            assert gate.held.wait(timeout=120), "the child never sent s2"
            for _ in range(2400):  # until the child has checkpointed s1 (observable state)
                if db.exists() and "s1" in finished_steps(db):
                    break
                time.sleep(0.05)
            assert finished_steps(db) == {"s1"}
            kill(child)
        before = [unit_of(b) for b in server.requests]
        assert sorted(before) == sorted(["plan", "step:Notice period in the 2023 version", held])

        result = asyncio.run(resume(db, server.base_url, concurrency=2))
        after = [unit_of(b) for b in server.requests[len(before) :]]

    assert result.status == "passed" and result.output_text == expected_output
    assert after.count(held) == 1 and "step:Notice period in the 2023 version" not in after
    assert Counter(before) + Counter(after) == Counter(expected_units) + Counter([held])
    assert result.steps["s1"].round == 1
    assert result.usage.requests == len(before) - 1 + len(after)  # s2's lost call unrecorded
