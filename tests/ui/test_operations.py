"""The operations and performance pages, and the actions on runs."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from maestro_lite.errors import UserError
from maestro_lite.events import ModelAttempted, RunInterrupted
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import RunQuery, SQLiteRunStore, cancel_run
from maestro_lite.scheduling import (
    JobRecord,
    RunJob,
    Schedule,
    SeenFile,
    SQLiteScheduleStore,
    Trigger,
    Watch,
)
from maestro_lite.settings import Settings
from maestro_lite.ui.app import DashboardConfig
from maestro_lite.usage import Usage

from ..services.stores import settings_on
from .conftest import dashboard_over, hostile_contracts, live_server, record_sync, spec

ROOT = Path(__file__).resolve().parents[2]


def _csrf(client: httpx.Client, path: str) -> str:
    return client.get(path).text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_operations_shows_queue_schedules_watches_triggers_and_corpora(
    settings: Settings, tmp_path: Path
) -> None:
    from maestro_lite.corpus.corpus import Corpus
    from maestro_lite.corpus.ingest import IngestReport
    from maestro_lite.testing import HashingEmbedder

    async def ingest() -> IngestReport:
        corpus = await Corpus.open("contracts", settings=settings, embedder=HashingEmbedder())
        try:
            return await corpus.ingest([ROOT / "sample_docs" / "contracts"])
        finally:
            await corpus.close()

    report = asyncio.run(ingest())
    assert report.ingested
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with SQLiteScheduleStore(settings.runs_db) as store:
        store.add_schedule(
            Schedule.create("weekly", cron="0 6 * * 1", job=RunJob(task="What <i>changed</i>?"))
        )
        store.add_trigger(Trigger.create("memo", after="weekly", job=RunJob(task="Memo")))
        store.add_watch(Watch.create(inbox, corpus="contracts", name="inbox"))
        seen = SeenFile(
            path=str(inbox / "a.txt"), size=1, mtime_ns=1, digest="d", status="ingested"
        )
        store.record_files("inbox", [seen], [])
        store.submit(JobRecord.submission(RunJob(task="queued task"), name="adhoc"))
    config = DashboardConfig(settings=settings, corpora=True)
    with live_server(config) as url, httpx.Client(base_url=url) as client:
        page = client.get("/operations").text
    with SQLiteScheduleStore(settings.runs_db) as store:
        schedule = store.schedule("weekly")
    next_fire = schedule.next_due.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f'<td class="next">{next_fire}</td>' in page
    assert "What &lt;i&gt;changed&lt;/i&gt;?" in page
    assert "queued task" in page and "pending" in page
    assert ">memo<" in page and ">inbox<" in page and "ingested 1" in page
    section = page.split('id="corpora"', 1)[1]
    assert ">contracts<" in section
    assert "cannot read the corpora" not in section
    assert f">{report.summary()}</td>" in section  # the last ingestion's report


def test_performance_figures_come_from_the_recorded_attempts_and_steps(
    db: str, tmp_path: Path
) -> None:
    settings = settings_on(db, tmp_path / "home")  # SQLite, then PostgreSQL
    results = [record_sync(settings, f"r{i}") for i in range(2)]
    query = RunQuery.open(settings)
    try:
        perf = query.performance(days=1)
    finally:
        query.close()
    attempts = sum(1 for r in results for e in r.events if e.kind == "model_attempted")
    assert perf.attempts == attempts and perf.failed == 0 and perf.cache_hit_rate == 0
    assert perf.runs == {"passed": 2}
    assert {lat.name for lat in perf.step_latency} == {"answer", "synthesize"}
    assert [m.name for m in perf.model_latency] == ["routed"]
    assert sum(d.calls for d in perf.days) == attempts
    tokens = sum(r.usage.input_tokens for r in results)
    assert sum(d.input_tokens for d in perf.days) == tokens
    with dashboard_over(settings) as dashboard, httpx.Client(base_url=dashboard) as client:
        page = client.get("/performance", params={"days": 7}).text
        assert client.get("/performance", params={"days": "x"}).status_code == 400
    assert "<td>synthesize</td>" in page and "<td>routed</td>" in page


def test_resume_starts_the_cli_command_for_a_stopped_run_only(settings: Settings) -> None:
    record_sync(settings, "done")
    with SQLiteRunStore(settings.runs_db) as store:
        store.create(spec("stopped", "a task"))
        store.append(RunInterrupted(run_id="stopped", error="endpoint down", usage=Usage()))
    launched: list[tuple[list[str], Path]] = []

    def launcher(argv: list[str], log: Path) -> int:
        launched.append((argv, log))
        return 4242

    config = DashboardConfig(settings=settings, corpora=False, launcher=launcher)
    with live_server(config) as url, httpx.Client(base_url=url) as client:
        csrf = _csrf(client, "/runs/stopped")
        started = client.post("/runs/stopped/resume", data={"csrf": csrf})
        finished = client.post("/runs/done/resume", data={"csrf": csrf})
    assert started.status_code == 200 and "process 4242" in started.text
    ((argv, log),) = launched
    assert argv == [sys.executable, "-m", "maestro_lite", "resume", "stopped"]
    assert log == settings.runs_db.parent / "logs" / "resume-stopped.log"
    assert finished.status_code == 400 and "already finished" in finished.text


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_cancel_interrupts_the_process_running_the_run(settings: Settings) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ui.maestro_run_child", str(settings.home), "busy"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    query = RunQuery(settings.runs_db)
    try:
        with SQLiteRunStore(settings.runs_db) as store:
            _wait_for(
                lambda: (
                    query.status("busy") == "running"
                    and any(sid == "s3" for _, sid in store.get("busy").running)
                ),
                "the child's run to reach step s3",
            )
        config = DashboardConfig(settings=settings, corpora=False)
        with live_server(config) as url, httpx.Client(base_url=url) as client:
            csrf = _csrf(client, "/runs/busy")
            done = client.post("/runs/busy/cancel", data={"csrf": csrf})
            assert done.status_code == 200 and f"process {child.pid}" in done.text
            assert child.wait(60) == 4  # the child's exit for a cancelled run
            assert query.status("busy") == "interrupted"
            again = client.post("/runs/busy/cancel", data={"csrf": csrf})
            assert again.status_code == 400 and "not running" in again.text
        cli = subprocess.run(
            [sys.executable, "-m", "maestro_lite", "runs", "cancel", "busy"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 2 and "run busy is not running (interrupted)" in cli.stderr
    finally:
        query.close()
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("owner", ["elsewhere:123", None])
def test_a_run_in_another_process_is_asked_through_the_store(
    settings: Settings, owner: str | None
) -> None:
    with SQLiteRunStore(settings.runs_db) as store:
        store.create(spec("far", "a task"))
    db = sqlite3.connect(settings.runs_db)
    with db:  # the run's recorded owner: another machine, or none
        db.execute("UPDATE runs SET owner = ? WHERE run_id = 'far'", (owner,))
    db.close()
    with SQLiteRunStore(settings.runs_db) as store:
        said = cancel_run(store, "far")
        assert "stop run far" in said and ("process 123 on elsewhere" in said) == bool(owner)
        assert store.take_cancel("far") and not store.take_cancel("far")


def test_a_run_whose_process_died_is_not_asked(settings: Settings) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with SQLiteRunStore(settings.runs_db) as store:
        store.create(spec("orphan", "a task"))
    db = sqlite3.connect(settings.runs_db)
    with db:
        owner = f"{socket.gethostname()}:{gone.pid}"
        db.execute("UPDATE runs SET owner = ? WHERE run_id = 'orphan'", (owner,))
    db.close()
    with SQLiteRunStore(settings.runs_db) as store:
        with pytest.raises(UserError, match="is gone"):
            cancel_run(store, "orphan")
        assert not store.take_cancel("orphan")


def test_waits_on_provider_limits_show_on_the_timeline_and_performance_page(
    settings: Settings,
) -> None:
    """One call in flight at a time: the first step call holds its permit until the other
    step's call is queued behind it, so exactly that one waits."""
    from maestro_lite.limits import Limiter, ProviderLimits
    from maestro_lite.models import FunctionModel, ModelCall
    from maestro_lite.ui import views

    from ..runs.conftest import fix_then_replan_model

    limiter = Limiter(default=ProviderLimits(max_concurrent=1))
    inner = fix_then_replan_model()
    held: list[bool] = []

    async def answer(call: ModelCall) -> object:
        if call.step_id in ("s1", "s2") and not held:  # a version's notice period
            held.append(True)
            # The limiter shows its queue as state, not as an event to wait on.
            while limiter.stats("routed").waiting == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        return await inner.request(
            call.messages, json_schema=call.json_schema, settings=call.settings
        )

    async def run() -> None:
        with SQLiteRunStore(settings.runs_db) as store:
            await Maestro(
                FunctionModel(answer, name="routed"),
                concurrency=2,
                run_store=store,
                limiter=limiter,
            ).run("Compare", corpus=hostile_contracts(), requirements=["law"], run_id="w")

    asyncio.run(run())
    with SQLiteRunStore(settings.runs_db) as store:
        record, events = store.get("w"), store.events("w")
    waits = [e for e in events if isinstance(e, ModelAttempted) and e.waited > 0]
    assert len(waits) == 1 and waits[0].purpose in ("step:s1", "step:s2")
    assert 0 < waits[0].waited <= waits[0].seconds
    timeline = views.timeline(record, events, now=datetime.now(UTC))
    bars = [b for row in timeline.rows for b in row.bars if b.css == "wait"]
    assert len(bars) == 1 and "limits" in bars[0].title
    query = RunQuery(settings.runs_db)
    try:
        perf = query.performance()
    finally:
        query.close()
    assert perf.delayed == 1 and perf.waited_seconds == pytest.approx(waits[0].waited)
