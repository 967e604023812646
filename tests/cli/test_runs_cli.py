"""`maestro runs list|show|export` over a run store that runs were recorded in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maestro_lite import EVENT_ADAPTER, ModelConnectionError, RetryPolicy, RunInterruptedError
from maestro_lite.models import FunctionModel, ModelCall
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import SQLiteRunStore

from ..runs.conftest import fix_then_replan_model
from ..runs.crash_child import REQUIREMENTS, TASK, contracts
from .conftest import Maestro as Cli


@pytest.fixture
async def recorded(tmp_path: Path) -> Path:
    """A home whose run store holds a passed run and one stopped by an outage."""
    home = tmp_path / "home"
    store = SQLiteRunStore(home / "runs.sqlite3")
    await Maestro(fix_then_replan_model(), run_store=store).run(
        TASK, corpus=contracts(), requirements=REQUIREMENTS, run_id="good"
    )
    healthy = fix_then_replan_model()

    def flaky(call: ModelCall) -> object:
        if call.schema_title == "Verdicts":
            raise ModelConnectionError("connection refused", model="routed")
        return healthy._function(call)

    with pytest.raises(RunInterruptedError):
        await Maestro(
            FunctionModel(flaky, name="routed"),
            run_store=store,
            retry=RetryPolicy(max_retries=1, initial_delay=0, jitter=0),
        ).run(TASK, corpus=contracts(), requirements=REQUIREMENTS, run_id="stopped")
    store.close()
    return home


def test_runs_list_shows_status_task_start_duration_tokens_and_cost(
    maestro: Cli, recorded: Path
) -> None:
    listed = maestro("runs", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    header = next(line for line in lines if "status" in line)
    for column in ("run", "task", "started", "duration", "tokens", "cost"):
        assert column in header
    stopped = next(line for line in lines if "stopped" in line)
    good = next(line for line in lines if "good" in line)
    assert lines.index(stopped) < lines.index(good)  # newest first
    assert "interrupted" in stopped and "passed" in good and TASK in good
    only = maestro("runs", "list", "--status", "interrupted")
    assert "stopped" in only.stdout and "good" not in only.stdout


def test_runs_show_draws_the_plans_steps_rounds_and_requirements(
    maestro: Cli, recorded: Path
) -> None:
    shown = maestro("runs", "show", "good")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "run good passed" in out
    assert "plan 1 (planner" in out and "plan 2 (replan, from round 3)" in out
    assert "s6 synthesize: Summarise notice and law — done, round 3" in out
    assert "fix" in out and "replan" in out and "finish" in out  # the decisions
    assert "cover the governing law of both versions" in out and "pass" in out

    stopped = maestro("runs", "show", "stopped").stdout
    assert "run stopped interrupted" in stopped
    assert "connection refused" in stopped
    assert "maestro resume stopped" in stopped


def test_runs_export_writes_the_trace_as_json_lines(
    maestro: Cli, recorded: Path, tmp_path: Path
) -> None:
    target = tmp_path / "trace.jsonl"
    assert maestro("runs", "export", "good", "-o", str(target)).returncode == 0
    lines = target.read_text().splitlines()
    assert json.loads(lines[0])["summary"]["status"] == "passed"
    events = [EVENT_ADAPTER.validate_json(line) for line in lines[1:]]
    assert events[0].kind == "run_started" and events[-1].kind == "run_finished"
    finished = [e for e in events if e.kind == "step_finished"]
    assert finished and all(e.result is not None for e in finished)  # type: ignore[union-attr]
    printed = maestro("runs", "export", "good")
    assert printed.stdout.splitlines() == lines


def test_an_unknown_run_is_one_clear_line(maestro: Cli, recorded: Path) -> None:
    shown = maestro("runs", "show", "nope")
    assert shown.returncode == 2
    assert "no run with id 'nope'" in shown.stderr and "maestro runs list" in shown.stderr
    assert "Traceback" not in shown.stderr
