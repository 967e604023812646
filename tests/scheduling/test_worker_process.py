"""A real `maestro worker` process stopped with SIGTERM mid-run, then started again: the run
continues from its checkpoints and no answered call is asked of the model twice.

The model endpoint runs in this process and counts every request; it holds the request the
test chose (a slow reply), so the worker is stopped exactly while that call is in flight: the
call finishes within the grace period, or a second SIGTERM cuts it off.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.queue_worker import worker_env
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


class WorkerProcess:
    """A real `maestro worker` process whose status lines are read as they come."""

    def __init__(
        self, home: Path, base_url: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        env = worker_env(home, base_url, COLUMNS="200", NO_COLOR="1", **(env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maestro_lite", "worker", "--concurrency", "1", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                self.lines.append(line)

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def signal(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait_for(self, text: str) -> None:
        wait_until(lambda: text in self.err, f"the worker to print {text!r}")

    def exited(self) -> str:
        """Its status lines, once it has exited 0 on its own."""
        self.process.wait(timeout=120)
        self._reader.join(timeout=10)
        assert self.process.returncode == 0, self.err
        return self.err

    def stop(self) -> str:
        """SIGTERM, and its status lines once it has exited."""
        self.signal()
        return self.exited()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not predicate():  # the worker is another process: poll its store
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass
class Scenario:
    """A home with the contracts corpus and one queued run job, an endpoint that holds the
    call of ``HELD``, and the stores the worker processes write."""

    settings: Settings
    job: JobRecord
    gate: Gate
    server: OpenAICompatibleServer
    store: SQLiteScheduleStore
    runs: SQLiteRunStore

    def worker(self, *args: str) -> WorkerProcess:
        return WorkerProcess(self.settings.home, self.server.base_url, *args)

    def finish(self) -> str:
        """Run a fresh worker until the job passes; its status lines."""
        worker = self.worker()
        try:
            wait_until(lambda: self.store.job(self.job.job_id).status == "passed", "the job")
            return worker.stop()
        finally:
            worker.kill()


def contracts_home(tmp_path: Path) -> Settings:
    """A home with the two contracts ingested as the corpus ``contracts``."""
    settings = Settings(home=tmp_path / "home", embedder="hashing")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)

    async def ingest() -> None:
        async with await Corpus.open("contracts", settings=settings) as corpus:
            assert (await corpus.ingest([docs])).ok

    asyncio.run(ingest())
    return settings


NOTICE_JOB = RunJob(
    task=TASK, corpus="contracts", requirements=["state both notice periods"], cache=False
)
"""No response cache: what is not asked again is kept by the run's checkpoints."""


@contextmanager
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    settings = contracts_home(tmp_path)
    gate = Gate()
    with (
        OpenAICompatibleServer(gate, model_ids=["test-model"]) as server,
        SQLiteScheduleStore.open(settings) as store,
        SQLiteRunStore.open(settings) as runs,
    ):
        queued = store.submit(JobRecord.submission(NOTICE_JOB, name="notice"))
        try:
            yield Scenario(settings, queued, gate, server, store, runs)
        finally:
            gate.release.set()


def test_sigterm_lets_the_call_in_flight_finish_and_it_is_not_paid_again_after_restart(
    tmp_path: Path,
) -> None:
    with scenario(tmp_path) as it:
        worker = it.worker()
        try:
            assert it.gate.held.wait(timeout=180), "the worker never reached the held step"
            worker.signal()  # SIGTERM while the held call is in flight
            worker.wait_for("1 call(s) in flight get up to 30s to finish")
            it.gate.release.set()  # the slow reply arrives within the grace period
            first = worker.exited()
        finally:
            worker.kill()
        before = [unit_of(b) for b in it.server.requests]
        assert before == EXPECTED[:3] and it.server.answered == 3  # the held call answered
        stopped = it.store.job(it.job.job_id)
        assert stopped.status == "interrupted" and stopped.run_ids == [f"{it.job.job_id}-1"]
        run_id = stopped.run_ids[0]
        assert it.runs.get(run_id).status == "interrupted"
        assert f"job {it.job.job_id} stopped" in first and "1 job(s) checkpointed" in first

        second = it.finish()
        after = [unit_of(b) for b in it.server.requests[len(before) :]]
        # Counted at the endpoint: each call once, the one answered in the grace period too.
        assert after == EXPECTED[3:]
        done = it.store.job(it.job.job_id)
        assert done.run_ids == [run_id] and done.outcome is not None
        assert done.outcome.output == "Notice fell from 90 days (2023) to 60 days (2025)."
        resumed = [e for e in it.runs.events(run_id) if isinstance(e, RunResumed)]
        assert [e.reused for e in resumed] == [["s1", "s2"]]
        usage = it.runs.get(run_id).summary.usage
        assert usage.requests == len(before) + len(after) and usage.failed_requests == 0
    assert "continuing 1 unfinished job(s)" in second
    assert f"job {it.job.job_id} started" in second and "(continuing its runs)" in second
    assert f"job {it.job.job_id} passed" in second


def test_a_second_sigterm_stops_at_once_and_the_cut_call_is_asked_again(
    tmp_path: Path,
) -> None:
    with scenario(tmp_path) as it:
        # A grace period far longer than the test may take: only the second signal ends it.
        worker = it.worker("--grace", "3600")
        try:
            assert it.gate.held.wait(timeout=180), "the worker never reached the held step"
            worker.signal()
            worker.wait_for("up to 3600s to finish")
            first = worker.stop()  # the second signal, with the held call still unanswered
        finally:
            worker.kill()
            it.gate.release.set()
        before = [unit_of(b) for b in it.server.requests]
        assert before == EXPECTED[:3]
        assert f"job {it.job.job_id} stopped" in first

        it.finish()
        after = [unit_of(b) for b in it.server.requests[len(before) :]]
        assert after == EXPECTED[2:]  # the call cut off is asked again, nothing else
        run_id = it.store.job(it.job.job_id).run_ids[0]
        # It reached the endpoint, so it counts, recorded as cancelled when the worker stopped.
        usage = it.runs.get(run_id).summary.usage
        assert usage.requests == len(before) + len(after) and usage.failed_requests == 1
