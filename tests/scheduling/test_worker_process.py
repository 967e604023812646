"""A real `maestro worker` process stopped with SIGTERM mid-run, then started again: the run
continues from its checkpoints and no finished step is asked of the model twice.

The model endpoint runs in this process and counts every request; it holds the request the
test chose, so the worker is stopped exactly while that step is in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from maestro_lite import Corpus, Settings
from maestro_lite.events import RunResumed
from maestro_lite.runs import SQLiteRunStore
from maestro_lite.scheduling import JobRecord, RunJob, SQLiteScheduleStore
from maestro_lite.testing import OpenAICompatibleServer, responder_from

from ..orchestration.conftest import V1, V2
from ..orchestration.test_orchestrator import answer_notice, judge_mentions, notice_plan, routed
from ..runs.conftest import unit_of

TASK = "How did the notice period change?"
HELD = "step:Notice period in the 2025 version"
EXPECTED = [
    "plan",
    "step:Notice period in the 2023 version",
    HELD,
    "step:Compare the notice periods",
    "judge:Notice fell from 90 days (2023) to 60 days (2025).",
]


class Gate:
    """Answers as the scenario's model; holds the first request for ``HELD`` until told."""

    def __init__(self) -> None:
        model = routed(notice_plan, answer_notice, judge_mentions("90 days", "60 days"))
        function: Any = model._function
        self.answer = responder_from(function)
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, body: dict[str, Any]) -> str | dict[str, Any]:
        if unit_of(body) == HELD and not self.held.is_set():
            self.held.set()
            self.release.wait(timeout=120)
        return self.answer(body)


def start_worker(home: Path, base_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "OPENAI_"))}
    env.update(
        MAESTRO_HOME=str(home),
        MAESTRO_EMBEDDER="hashing",
        MAESTRO_PROVIDER="openai",
        MAESTRO_MODEL="test-model",
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="test",
        MAESTRO_ALLOW_DOWNLOAD="0",
        COLUMNS="200",
        NO_COLOR="1",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "maestro_lite", "worker", "--concurrency", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(worker: subprocess.Popen[str]) -> str:
    """SIGTERM, and the worker's status lines once it has exited on its own."""
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    return err


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not predicate():  # the worker is another process: poll its store
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_mid_run_then_restart_completes_without_repeating_finished_steps(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, embedder="hashing")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)

    async def ingest() -> None:
        async with await Corpus.open("contracts", settings=settings) as corpus:
            assert (await corpus.ingest([docs])).ok

    asyncio.run(ingest())
    with SQLiteScheduleStore.open(settings) as store:
        # No response cache: what is not asked again is kept by the run's checkpoints.
        job = RunJob(
            task=TASK, corpus="contracts", requirements=["state both notice periods"], cache=False
        )
        queued = store.submit(JobRecord.submission(job, name="notice"))

    gate = Gate()
    with (
        OpenAICompatibleServer(gate, model_ids=["test-model"]) as server,
        SQLiteScheduleStore.open(settings) as store,
        SQLiteRunStore.open(settings) as runs,
    ):
        worker = start_worker(home, server.base_url)
        try:
            assert gate.held.wait(timeout=180), "the worker never reached the held step"
            first = stop(worker)
        finally:
            if worker.poll() is None:
                worker.kill()
            gate.release.set()
        before = [unit_of(b) for b in server.requests]
        assert before == EXPECTED[:3]
        stopped = store.job(queued.job_id)
        assert stopped.status == "interrupted" and stopped.run_ids == [f"{queued.job_id}-1"]
        run_id = stopped.run_ids[0]
        assert runs.get(run_id).status == "interrupted"
        assert f"job {queued.job_id} stopped" in first and "1 job(s) checkpointed" in first

        worker = start_worker(home, server.base_url)
        try:
            wait_until(lambda: store.job(queued.job_id).status == "passed", "the job to pass")
            second = stop(worker)
        finally:
            if worker.poll() is None:
                worker.kill()
        after = [unit_of(b) for b in server.requests[len(before) :]]

        # Counted at the endpoint: each call once, except the one in flight at SIGTERM.
        assert after == EXPECTED[2:]
        done = store.job(queued.job_id)
        assert done.run_ids == [run_id] and done.outcome is not None
        assert done.outcome.output == "Notice fell from 90 days (2023) to 60 days (2025)."
        resumed = [e for e in runs.events(run_id) if isinstance(e, RunResumed)]
        assert [e.reused for e in resumed] == [["s1"]]
        # Every call that reached the endpoint counts, the one cut off by SIGTERM included
        # (recorded as cancelled when the worker stopped the run).
        assert runs.get(run_id).summary.usage.requests == len(before) + len(after)
        assert runs.get(run_id).summary.usage.failed_requests == 1
    assert "continuing 1 unfinished job(s)" in second
    assert f"job {queued.job_id} started" in second and "(continuing its runs)" in second
    assert f"job {queued.job_id} passed" in second
