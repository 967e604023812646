"""The worker's Prometheus metrics: what they count, the exposition format, the endpoint."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from maestro_lite.limits import Limiter, ProviderLimits
from maestro_lite.orchestrator import Maestro
from maestro_lite.scheduling import JobFinished, JobRecord, RunJob, SQLiteScheduleStore
from maestro_lite.scheduling.metrics import WorkerMetrics, start_metrics_server
from maestro_lite.settings import Settings

from ..orchestration.conftest import MemoryRetriever
from ..runs.conftest import contracts, fix_then_replan_model  # noqa: F401

SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    """Samples by name and labels; fails on any line that is not a comment or a sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample: {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


async def test_the_limiter_counts_calls_that_waited_for_a_permit() -> None:
    limiter = Limiter(default=ProviderLimits(max_concurrent=1))
    first = await limiter.acquire("openai")
    second = asyncio.create_task(limiter.acquire("openai"))
    await asyncio.sleep(0)  # the second call queues behind the first
    assert limiter.stats("openai").waiting == 1
    first.release()
    (await second).release()
    stats = limiter.stats("openai")
    assert limiter.gates() == ["openai"]
    assert stats.delayed == 1 and stats.granted == 2 and stats.waited_seconds >= 0


async def test_metrics_count_calls_tokens_latency_runs_and_jobs(
    contracts: MemoryRetriever,  # noqa: F811
) -> None:
    store = SQLiteScheduleStore()
    store.submit(JobRecord.submission(RunJob(task="t"), name="a"))
    store.submit(JobRecord.submission(RunJob(task="u"), name="b"))
    limiter = Limiter(default=ProviderLimits(max_concurrent=4))
    metrics = WorkerMetrics(job_counts=store.job_counts, limiter=limiter)
    maestro = Maestro(fix_then_replan_model(), on_event=metrics, limiter=limiter)
    result = await maestro.run("Compare", corpus=contracts, requirements=["governing law"])
    metrics(JobFinished(job_id="j1", name="a", status="passed"))
    samples = parse(metrics.render())
    store.close()

    attempts = [e for e in result.events if e.kind == "model_attempted"]
    assert samples['maestro_model_calls_total{model="routed",outcome="ok"}'] == len(attempts)
    assert (
        samples['maestro_tokens_total{model="routed",direction="input"}']
        == result.usage.input_tokens
    )
    assert samples['maestro_model_call_seconds_count{model="routed"}'] == len(attempts)
    assert samples['maestro_model_call_seconds_bucket{model="routed",le="+Inf"}'] == len(attempts)
    buckets = [v for k, v in samples.items() if k.startswith("maestro_model_call_seconds_bucket")]
    assert buckets == sorted(buckets)  # cumulative
    assert samples['maestro_runs_finished_total{status="passed"}'] == 1
    assert samples['maestro_jobs_finished_total{status="passed"}'] == 1
    assert samples['maestro_jobs{state="pending"}'] == 2
    assert samples['maestro_limiter_in_flight{provider="routed"}'] == 0
    assert 'maestro_limiter_wait_seconds_total{provider="routed"}' in samples
    assert samples['maestro_step_seconds_count{kind="answer"}'] >= 2


def test_label_values_are_escaped() -> None:
    metrics = WorkerMetrics()
    metrics(JobFinished(job_id="j", name="n", status="failed"))
    from maestro_lite.events import ModelAttempted
    from maestro_lite.usage import Usage

    metrics(
        ModelAttempted(
            run_id="r",
            purpose="plan",
            model='we"ird\\name',
            outcome="ok",
            usage=Usage(),
            seconds=0.2,
        )
    )
    text = metrics.render()
    assert 'model="we\\"ird\\\\name"' in text
    parse(text)


async def test_the_endpoint_serves_metrics_on_loopback_only_at_its_path() -> None:
    metrics = WorkerMetrics()
    server = await start_metrics_server(metrics, port=0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        assert host == "127.0.0.1"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ok = await client.get("/metrics")
            missing = await client.get("/")
    finally:
        server.close()
        await server.wait_closed()
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE maestro_model_call_seconds histogram" in ok.text
    assert missing.status_code == 404


def test_a_metrics_host_without_a_port_is_refused_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maestro_lite", "worker", "--metrics-host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--metrics-host needs --metrics-port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_process_serves_its_metrics(tmp_path: Path) -> None:
    """`maestro worker --metrics-port 0` prints where its metrics are, and serves them."""
    from maestro_lite.scheduling import JobInputs

    home = tmp_path / "home"
    with SQLiteScheduleStore.open(Settings(home=home)) as store:
        # A job whose placeholder cannot be filled is recorded failed: the worker leaves it.
        failed = JobRecord.queue(RunJob(task="{output}"), JobInputs(source="manual", name="x"))
        assert failed.status == "failed"
        store.submit(failed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "OPENAI_"))}
    env.update(
        MAESTRO_HOME=str(home),
        MAESTRO_EMBEDDER="hashing",
        MAESTRO_PROVIDER="openai",
        MAESTRO_MODEL="test-model",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",  # never called: nothing is queued
        OPENAI_API_KEY="test",
        COLUMNS="200",
        NO_COLOR="1",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "maestro_lite", "worker", "--metrics-port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr = worker.stderr
    assert stderr is not None

    def read() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=120)
            if line.startswith("metrics at "):
                url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        samples = parse(httpx.get(url).text)
        assert samples['maestro_jobs{state="failed"}'] == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
        reader.join(timeout=10)
        stderr.close()
    assert worker.returncode == 0
