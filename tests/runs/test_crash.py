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


async def resume(db: Path, base_url: str) -> RunResult:
    """Resume run ``r`` in this process, as ``maestro resume r`` would."""
    store = SQLiteRunStore(db)
    assert store.get("r").status == "running"  # the child had no chance to record more
    async with OpenAIModel("test-model", base_url=base_url) as model:
        return await Maestro(model, concurrency=1, run_store=store).resume("r", corpus=contracts())


@pytest.mark.parametrize("unit", KILL_AT)
def test_a_run_killed_mid_run_resumes_without_repeating_finished_calls(
    unit: str, baseline: tuple[str, list[str]], tmp_path: Path
) -> None:
    expected_output, expected_units = baseline
    assert unit in expected_units
    db = tmp_path / "runs.sqlite3"
    gate = Gate(unit)
    with OpenAICompatibleServer(gate) as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.runs.crash_child", str(db), server.base_url, "r"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert gate.held.wait(timeout=120), "the child never reached the kill point"
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=60) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            gate.release.set()
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
