"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Screenshots of each page are kept under ``tests/artifacts/ui`` (ignored by git) for people
to look at. The tests wait for what the page shows (Playwright's ``expect`` polls), never
for a length of time.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.runs import RunQuery, SQLiteRunStore
from maestro_lite.scheduling import RunJob, Schedule, SQLiteScheduleStore
from maestro_lite.settings import Settings

from ..runs.conftest import fix_then_replan_model
from .conftest import HOSTILE, REQUIREMENTS, TASK, record_sync

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"no browser at {CHROMIUM}: `apt-get install chromium` (what .ci/run does)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)")
expect = sync_api.expect
# A loaded CI machine can be slow to paint: wait longer than Playwright's 5 s for state.
expect.set_options(timeout=30_000)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh chromium page; a screenshot of it is saved when the test ends."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
            assert not errors, f"the page raised: {errors}"
        finally:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
            context.close()
            browser.close()


def test_runs_list_leads_to_a_run_with_its_dag_timeline_and_requirements(
    settings: Settings, dashboard: str, page: Any
) -> None:
    result = record_sync(settings, "r-passed")
    assert result.status == "passed"

    page.goto(dashboard + "/")
    row = page.locator("tr.run-row", has_text="r-passed")
    expect(row).to_contain_text("passed")
    expect(row.locator("td.task")).to_have_text(TASK)  # the markup shows as text
    page.screenshot(path=str(ARTIFACTS / "runs-list.png"), full_page=True)

    row.locator("a").click()
    expect(page).to_have_url(dashboard + "/runs/r-passed")
    expect(page.locator("#run-status")).to_have_text("passed")
    with SQLiteRunStore(settings.runs_db) as store:
        record = store.get("r-passed")
    # The last plan (the replan) as a graph: the two steps it kept, three new ones, and the
    # synthesis's four dependencies as edges.
    latest = page.locator("details.plan").first
    expect(latest.locator("g.node")).to_have_count(len(record.plans[-1].plan.steps))
    expect(latest.locator("g.node")).to_have_count(5)
    expect(latest.locator("path.edge")).to_have_count(4)
    expect(latest.locator("g.node[data-step='s6']")).to_have_class("node done")
    # The timeline: a bar per step of each round, model calls inside, and planner/judge rows.
    expect(page.locator("svg.timeline rect.bar.step")).to_have_count(len(record.steps))
    assert page.locator("svg.timeline rect.bar.call").count() >= 6
    expect(page.locator("svg.timeline text.row-label", has_text="planner")).to_have_count(1)
    # The requirement table and each round's decision with its reason.
    requirement = page.locator("table.requirements tbody tr", has_text=REQUIREMENTS[0])
    expect(requirement).to_contain_text("pass")
    expect(page.locator("table.requirements tbody tr")).to_have_count(
        len(record.reports[max(record.reports)])
    )
    expect(page.locator("table.rounds tbody tr")).to_have_count(3)
    expect(page.locator("table.rounds td.decision")).to_have_text(["fix", "replan", "finish"])
    # A citation: its quote highlighted in the text it came from, markup as text.
    step = page.locator("details.step", has_text="Notice period in the 2023 version").first
    step.locator("summary").click()
    expect(step.locator("blockquote.citation mark").first).to_contain_text("90 days")
    expect(step.locator("blockquote.citation .source").first).to_contain_text(HOSTILE)
    assert page.evaluate("window.pwned === undefined")
    page.screenshot(path=str(ARTIFACTS / "run-page.png"), full_page=True)


def _gated_model(gate: threading.Event, started: threading.Event) -> FunctionModel:
    """The fix-then-replan model, whose first answer of step s3 waits for ``gate``."""
    inner = fix_then_replan_model()

    async def answer(call: ModelCall) -> Any:
        if call.step_id == "s3" and not gate.is_set():  # compares the notice periods
            started.set()
            await asyncio.to_thread(gate.wait)
        return await inner.request(
            call.messages, json_schema=call.json_schema, settings=call.settings
        )

    return FunctionModel(answer, name="routed")


def test_a_running_run_updates_live_without_reload(
    settings: Settings, dashboard: str, page: Any
) -> None:
    gate, started = threading.Event(), threading.Event()
    outcome: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcome.append(
            record_sync(settings, "r-live", model=_gated_model(gate, started))
        )
    )
    runner.start()
    try:
        assert started.wait(60), "the run never reached step s3"
        page.goto(dashboard + "/runs/r-live")
        expect(page.locator("#run-status")).to_have_text("running")
        expect(page.locator("g.node[data-step='s3']").first).to_have_class("node running")
        page.evaluate("document.body.dataset.loaded = 'once'")  # gone if the page reloads
        page.screenshot(path=str(ARTIFACTS / "run-live-before.png"), full_page=True)
    finally:
        gate.set()
        runner.join(60)
    assert outcome and outcome[0].status == "passed"
    expect(page.locator("#run-status")).to_have_text("passed")
    expect(page.locator("#live-log li").first).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-run-ended", "passed")
    assert page.evaluate("document.body.dataset.loaded") == "once"
    expect(page.locator("table.rounds tbody tr")).to_have_count(3)


def test_pausing_a_schedule_and_submitting_a_job_from_the_operations_page(
    settings: Settings, dashboard: str, page: Any
) -> None:
    with SQLiteScheduleStore(settings.runs_db) as store:
        store.add_schedule(
            Schedule.create("weekly", cron="0 6 * * 1", job=RunJob(task="What changed?"))
        )
    page.goto(dashboard + "/operations")
    row = page.locator("tr.schedule[data-name='weekly']")
    expect(row.locator("td.next")).not_to_contain_text("paused")
    row.get_by_role("button", name="Pause").click()
    expect(page.locator("#message")).to_have_text("schedule weekly paused")
    page.locator("#back").click()
    expect(row.locator("td.next")).to_have_text("paused")
    with SQLiteScheduleStore(settings.runs_db) as store:
        assert store.schedule("weekly").paused

    page.fill("input[name=name]", "adhoc")
    page.fill("input[name=job]", 'run "What changed <b>here</b>?" --corpus contracts')
    page.click("#submit-job")
    expect(page.locator("#message")).to_contain_text("queued job")
    page.locator("#back").click()
    expect(page.locator("table.jobs")).to_contain_text("What changed <b>here</b>?")
    with SQLiteScheduleStore(settings.runs_db) as store:
        (job,) = store.jobs()
    assert job.status == "pending" and job.name == "adhoc"


def test_a_new_run_appears_in_the_list_without_reload(
    settings: Settings, dashboard: str, page: Any
) -> None:
    page.goto(dashboard + "/")
    expect(page.locator("#run-count")).to_have_text("0 run(s)")
    record_sync(settings, "r-new")
    expect(page.locator("tr.run-row", has_text="r-new")).to_contain_text("passed")
    query = RunQuery(settings.runs_db)
    try:
        assert query.page().total == 1
    finally:
        query.close()
