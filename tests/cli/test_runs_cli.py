"""`maestro runs list|show|export` over a run store that runs were recorded in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from maestro_lite import (
    EVENT_ADAPTER,
    Corpora,
    ModelConnectionError,
    RetryPolicy,
    RunInterruptedError,
    Settings,
)
from maestro_lite.events import Event, StepFinished
from maestro_lite.models import FunctionModel, ModelCall, OpenAIModel
from maestro_lite.orchestrator import Maestro
from maestro_lite.runs import SQLiteRunStore
from maestro_lite.testing import OpenAICompatibleServer

from ..orchestration.conftest import V1, V2
from ..runs.conftest import fix_then_replan_model, over_http, unit_of
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


@pytest.fixture
def contracts_corpus(maestro: Cli, tmp_path: Path) -> dict[str, str]:
    """The two agreements ingested as corpus "contracts" (hashing embedder: no model)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)
    env = {"MAESTRO_EMBEDDER": "hashing"}
    assert maestro("ingest", str(docs), "--corpus", "contracts", env=env).returncode == 0
    return env


def endpoint(env: dict[str, str], server: OpenAICompatibleServer) -> dict[str, str]:
    return {
        **env,
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": server.base_url,
        "MAESTRO_MODEL": "test-model",
    }


async def test_resume_continues_a_stopped_run_from_the_command_line(
    maestro: Cli, contracts_corpus: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", embedder="hashing")
    responder = over_http(fix_then_replan_model())
    server = OpenAICompatibleServer(responder).start()
    port = server.base_url.rsplit(":", 1)[1].split("/")[0]

    def die_after_s2(event: Event) -> None:
        if isinstance(event, StepFinished) and event.step_id == "s2":
            server.stop()

    corpora = Corpora(settings)
    store = SQLiteRunStore.open(settings)
    try:
        async with OpenAIModel("test-model", base_url=server.base_url) as model:
            with pytest.raises(RunInterruptedError):
                await Maestro(
                    model,
                    corpora=corpora,
                    run_store=store,
                    concurrency=1,
                    retry=RetryPolicy(max_retries=0),
                ).run(
                    TASK,
                    corpus="contracts",
                    requirements=REQUIREMENTS,
                    run_id="cli",
                    on_event=die_after_s2,
                )
    finally:
        await corpora.aclose()
        store.close()
    before = {unit_of(body) for body in server.requests}

    with OpenAICompatibleServer(responder, port=int(port)) as back:
        resumed = maestro("resume", "cli", env=endpoint(contracts_corpus, back))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "run cli resumed in round 1, keeping s1, s2" in resumed.stderr
    assert "Notice 90 -> 60 days; law New York -> Delaware." in resumed.stdout
    assert not before & {unit_of(body) for body in back.requests}  # nothing paid twice
    assert "passed" in maestro("runs", "list").stdout

    again = maestro("resume", "cli", env=endpoint(contracts_corpus, back))
    assert again.returncode == 2 and "already finished (passed)" in again.stderr
    missing = maestro("resume", "nope", env=endpoint(contracts_corpus, back))
    assert missing.returncode == 2 and "no run with id 'nope'" in missing.stderr


RUN_ARGS = ("run", TASK, "--corpus", "contracts", "--require", REQUIREMENTS[0])


def test_maestro_run_is_recorded_and_an_identical_run_is_answered_from_the_cache(
    maestro: Cli, contracts_corpus: dict[str, str]
) -> None:
    with OpenAICompatibleServer(over_http(fix_then_replan_model())) as server:
        env = endpoint(contracts_corpus, server)
        first = maestro(*RUN_ARGS, env=env)
        calls = len(server.requests)
        second = maestro(*RUN_ARGS, env=env)
        assert len(server.requests) == calls  # not one call: every answer came from disk
        third = maestro(*RUN_ARGS, "--no-cache", env=env)
        # One more than the first run: that one answered its second judging of the same
        # output from the cache already.
        assert len(server.requests) == 2 * calls + 1
    assert first.returncode == second.returncode == third.returncode == 0, first.stderr
    assert second.stdout.split("answer")[1] == first.stdout.split("answer")[1]
    listed = maestro("runs", "list").stdout
    assert listed.count("passed") == 3


def test_a_run_stopped_on_its_budget_says_how_to_raise_it_and_resume_does(
    maestro: Cli, contracts_corpus: dict[str, str]
) -> None:
    with OpenAICompatibleServer(over_http(fix_then_replan_model())) as server:
        env = endpoint(contracts_corpus, server)
        short = maestro(*RUN_ARGS, "--max-requests", "3", env=env)
        assert short.returncode == 1, short.stdout + short.stderr
        assert "stopped on its budget (max_requests=3)" in short.stdout
        found = re.search(r"maestro resume (\w+) --max-requests 6", short.stdout)
        assert found is not None, short.stdout
        run_id = found.group(1)
        assert len(server.requests) == 3

        same = maestro("resume", run_id, env=env)
        assert same.returncode == 2 and "stopped on its budget (max_requests=3)" in same.stderr
        assert len(server.requests) == 3
        raised = maestro("resume", run_id, "--max-requests", "40", env=env)
    assert raised.returncode == 0, raised.stdout + raised.stderr
    assert "Notice 90 -> 60 days; law New York -> Delaware." in raised.stdout
    assert "passed" in maestro("runs", "show", run_id).stdout
