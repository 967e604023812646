"""Workers on several machines share one queue in PostgreSQL: real worker processes, each
with a home of its own (as on its own machine), the model an OpenAI-compatible endpoint in
this process that counts every request.

Two workers drain 50 queued jobs and each job runs exactly once; a worker SIGKILLed mid-job
leaves a lease that expires, and the other worker finishes the job once, resuming its run
from the checkpoints: no finished step is asked of the model again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from evals.queue_worker import PingJob, worker_env
from maestro_lite.events import RunResumed
from maestro_lite.runs import PostgresRunStore
from maestro_lite.scheduling import JobRecord, PostgresScheduleStore
from maestro_lite.testing import OpenAICompatibleServer

from ..runs.conftest import unit_of
from .test_worker_process import (
    EXPECTED,
    HELD,
    NOTICE_JOB,
    Gate,
    WorkerProcess,
    contracts_home,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def test_two_worker_processes_run_each_of_50_queued_jobs_once(
    tmp_path: Path, database_url: str
) -> None:
    with (
        PostgresScheduleStore(database_url) as store,
        OpenAICompatibleServer(lambda body: "pong", latency=0.02) as server,
    ):
        jobs = [
            store.submit(JobRecord.submission(PingJob(text=f"job {i}"), name="ping"))
            for i in range(50)
        ]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "evals.queue_worker", "4"],
                env=worker_env(
                    tmp_path / f"machine{i}", server.base_url, MAESTRO_DATABASE_URL=database_url
                ),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
            for i in range(2)
        ]
        try:
            wait_until(lambda: store.job_counts() == {"passed": 50}, "all 50 jobs to finish")
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=60) for worker in workers]
        outputs = [store.job(j.job_id).outcome for j in jobs]
    assert codes == [0, 0]
    # Counted at the endpoint: every job's one call, once.
    asked = Counter(body["messages"][-1]["content"] for body in server.requests)
    assert asked == Counter(f"job {i}" for i in range(50))
    assert all(outcome is not None and outcome.output == "pong" for outcome in outputs)


def test_a_killed_workers_job_is_finished_once_elsewhere_when_its_lease_expires(
    tmp_path: Path, database_url: str
) -> None:
    settings = contracts_home(tmp_path)
    gate = Gate()
    lease = {"MAESTRO_DATABASE_URL": database_url, "MAESTRO_JOB_LEASE_SECONDS": "2"}
    with (
        OpenAICompatibleServer(gate, model_ids=["test-model"]) as server,
        PostgresScheduleStore(database_url) as store,
        PostgresRunStore(database_url) as runs,
    ):
        job = store.submit(JobRecord.submission(NOTICE_JOB, name="notice"))
        first = WorkerProcess(settings.home, server.base_url, env=lease)
        second: WorkerProcess | None = None
        try:
            assert gate.held.wait(timeout=180), "the first worker never reached the held step"
            # The other machine's worker joins while the first holds the job's lease.
            second = WorkerProcess(settings.home, server.base_url, env=lease)
            second.wait_for("worker started")
            assert store.job(job.job_id).owner.endswith(f":{first.process.pid}")  # type: ignore[union-attr]
            first.process.kill()  # SIGKILL: no interruption recorded, the lease just ages
            first.process.wait()
            gate.release.set()  # its held call is answered to nobody
            wait_until(lambda: store.job(job.job_id).status == "passed", "the job to pass")
            log = second.stop()
        finally:
            gate.release.set()
            first.kill()
            if second is not None:
                second.kill()
        done = store.job(job.job_id)
        run_id = f"{job.job_id}-1"
        assert done.run_ids == [run_id] and done.outcome is not None
        assert done.outcome.output == "Notice fell from 90 days (2023) to 60 days (2025)."
        # Counted at the endpoint: the finished steps once; the call cut off by the kill twice.
        assert Counter(unit_of(b) for b in server.requests) == Counter([*EXPECTED, HELD])
        resumed = [e for e in runs.events(run_id) if isinstance(e, RunResumed)]
        assert [e.reused for e in resumed] == [["s1"]]
    assert f"job {job.job_id} started" in log and "(continuing its runs)" in log
    assert f"job {job.job_id} passed" in log
    # Any machine's CLI reads the shared run store.
    env = worker_env(tmp_path / "elsewhere", "http://127.0.0.1:9/v1", **lease, COLUMNS="200")
    listed = subprocess.run(
        [sys.executable, "-m", "maestro_lite", "runs", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout and "passed" in listed.stdout
