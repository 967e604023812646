"""`maestro schedule|trigger|watch|watches|jobs` as a user runs them: what they save, and
one actionable line for each mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from maestro_lite import ProviderLimits, Settings
from maestro_lite.cli import app
from maestro_lite.cli._jobargs import _DISPLAY_ONLY, _TAKEN, _WORKER_LEVEL, job_from_args
from maestro_lite.cli.worker import worker_limiter
from maestro_lite.scheduling import SQLiteScheduleStore
from pipelines.jobs import RUNNERS, ExtractJob, ResearchJob

from .conftest import Maestro


def refused(result: object, *needles: str) -> None:
    """A one-line error (exit 2) that says each of ``needles``."""
    assert result.returncode == 2, result.stdout + result.stderr  # type: ignore[attr-defined]
    err: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and err.count("error:") == 1, err
    for needle in needles:
        assert needle in err, err


def test_schedules_are_added_listed_paused_and_removed(maestro: Maestro, tmp_path: Path) -> None:
    added = maestro(
        "schedule",
        "add",
        "weekly",
        "--cron",
        "0 6 * * 1",
        "--tz",
        "Europe/Oslo",
        "--",
        "research",
        "What changed this week?",
        "--docs",
        "contracts",
        "--out",
        "reports/{date}",
        "--budget",
        "low",
    )
    assert added.returncode == 0, added.stderr
    assert "schedule weekly: research 'What changed this week?'" in added.stdout
    assert "06:00 CE" in added.stdout  # the next times, in the schedule's zone
    with SQLiteScheduleStore(tmp_path / "home" / "runs.sqlite3") as store:
        job = RUNNERS["research"].validate(store.schedule("weekly").job)
    # The worker runs elsewhere: a relative path is made absolute around its placeholder.
    assert isinstance(job, ResearchJob) and job.out == str(Path.cwd() / "reports" / "{date}")

    listed = maestro("schedule", "list")
    assert "weekly" in listed.stdout and "Europe/Oslo" in listed.stdout
    assert "run-once" in listed.stdout
    assert "paused" in maestro("schedule", "pause", "weekly").stdout
    assert "paused" in maestro("schedule", "list").stdout
    assert "resumed; next" in maestro("schedule", "resume", "weekly").stdout

    # The same name again is refused; a trigger can follow it.
    again = maestro("schedule", "add", "weekly", "--cron", "@daily", "--", "run", "x")
    refused(again, "a schedule named 'weekly' exists already")
    memo = maestro(
        "trigger",
        "add",
        "memo",
        "--after",
        "weekly",
        "--on",
        "always",
        "--",
        "run",
        "Memo from run {run_id}: {output}",
        "--corpus",
        "contracts",
    )
    assert memo.returncode == 0, memo.stderr
    assert "memo" in maestro("trigger", "list").stdout
    assert "removed schedule weekly" in maestro("schedule", "remove", "weekly").stdout
    assert "no schedules yet" in maestro("schedule", "list").stdout


def test_mistakes_are_refused_in_one_line_when_declared(maestro: Maestro) -> None:
    def add(*args: str) -> object:
        return maestro("schedule", "add", "s", *args)

    refused(add("--cron", "61 * * * *", "--", "run", "x"), "invalid cron expression", "0 6 * * 1")
    refused(
        add("--cron", "@daily", "--tz", "Mars/Base", "--", "run", "x"),
        "unknown time zone 'Mars/Base'",
        "Europe/Oslo",
    )
    refused(
        add("--cron", "@daily", "--", "summarise", "x"),
        "'summarise' cannot be scheduled",
        "run, research, compare, extract",
    )
    refused(add("--cron", "@daily", "--", "research"), "research: Missing argument")
    refused(
        add("--cron", "@daily", "--", "research", "q", "--budget", "huge"),
        "research: Invalid value",
    )
    refused(
        add("--cron", "@daily", "--", "run", "x", "--model", "openai:gpt-4o"),
        "--model cannot be part of a scheduled job",
        "maestro worker --model",
    )
    refused(
        add("--cron", "@daily", "--", "run", "Check {output}"),
        "placeholder {output}",
        "A schedule fills",
    )

    refused(
        maestro("trigger", "add", "b", "--after", "a", "--", "run", "x"),
        "--after 'a': no schedule, watch, trigger or job has that name",
    )
    assert maestro("jobs", "submit", "a", "--", "run", "w").returncode == 0
    assert maestro("trigger", "add", "b", "--after", "a", "--", "run", "x").returncode == 0
    assert maestro("trigger", "add", "c", "--after", "b", "--", "run", "y").returncode == 0
    refused(
        maestro("trigger", "add", "a", "--after", "c", "--", "run", "z"),
        "trigger 'a' would start a cycle: a -> b -> c -> a",
    )


def test_watch_saves_a_watch_whose_then_job_names_absolute_paths(
    maestro: Maestro, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    saved = maestro(
        "watch",
        str(inbox),
        "--corpus",
        "inbox",
        "--save",
        "--then",
        "research",
        "Summarise {file}",
        "--docs",
        "{file}",
        "--out",
        "reports",
    )
    assert saved.returncode == 0, saved.stderr
    assert "watch inbox:" in saved.stdout and "then research 'Summarise {file}'" in saved.stdout
    with SQLiteScheduleStore(tmp_path / "home" / "runs.sqlite3") as store:
        stored = store.watch("inbox").job
    assert stored is not None
    job = RUNNERS["research"].validate(stored)
    assert isinstance(job, ResearchJob)
    assert job.docs == ["{file}"] and job.out == str(Path.cwd() / "reports")
    listed = maestro("watches", "list")
    assert "inbox" in listed.stdout and str(inbox) in listed.stdout
    assert "kept" in listed.stdout and "pruned" not in listed.stdout
    other = tmp_path / "other"
    other.mkdir()
    pruning = maestro("watch", str(other), "--corpus", "other", "--prune", "--save")
    assert pruning.returncode == 0, pruning.stderr
    with SQLiteScheduleStore(tmp_path / "home" / "runs.sqlite3") as store:
        assert store.watch("other").prune and not store.watch("inbox").prune
    assert "pruned" in maestro("watches", "list").stdout
    refused(
        maestro("watch", str(tmp_path / "missing"), "--corpus", "inbox", "--save"),
        "is not a folder",
    )
    refused(
        maestro(
            "watch",
            str(inbox),
            "--corpus",
            "inbox",
            "--save",
            "--per-batch",
            "--then",
            "run",
            "Summarise {file}",
        ),
        "placeholder {file}",
    )

    queued = maestro("jobs", "submit", "now", "--", "compare", "a.txt", "b.txt", "-a", "fees")
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.split()[2].rstrip(":")
    shown = json.loads(maestro("jobs", "show", job_id).stdout)
    assert shown["status"] == "pending" and shown["spec"]["kind"] == "compare"
    assert shown["spec"]["documents"] == ["a.txt", "b.txt"]  # not files: document names
    assert job_id in maestro("jobs", "list").stdout


@pytest.mark.parametrize("args", [["jobs", "show", "nope"], ["schedule", "remove", "nope"]])
def test_unknown_names_are_one_line(maestro: Maestro, args: list[str]) -> None:
    refused(maestro(*args), "nope")


def test_the_worker_takes_its_provider_limits_from_the_settings_unless_told() -> None:
    unset = Settings(max_concurrent=None, requests_per_minute=None, tokens_per_minute=None)
    assert worker_limiter(unset).default == ProviderLimits(max_concurrent=8)
    configured = Settings(max_concurrent=3, requests_per_minute=120, tokens_per_minute=50_000)
    assert worker_limiter(configured).default == ProviderLimits(
        max_concurrent=3, requests_per_minute=120, tokens_per_minute=50_000
    )
    told = worker_limiter(configured, max_calls=5, rpm=60).default
    assert (told.max_concurrent, told.requests_per_minute) == (5, 60)
    assert told.tokens_per_minute == 50_000


def test_every_option_of_a_schedulable_command_is_carried_by_its_job_or_refused() -> None:
    # A new option on `maestro research` (say) must reach the job, or be refused when a
    # schedule names it: never accepted and dropped.
    group = typer.main.get_command(app)
    for name, taken in _TAKEN.items():
        options = {p.name for p in group.commands[name].params}
        assert options - taken - _DISPLAY_ONLY - set(_WORKER_LEVEL) == set(), name


def test_research_and_extract_options_reach_their_jobs() -> None:
    research = job_from_args(
        ["research", "Q?", "--sub-questions", "2", "--planner", "--sub-question-use", "queries"]
    )
    assert isinstance(research, ResearchJob)
    assert (research.max_sub_questions, research.plan_mode, research.sub_question_use) == (
        2,
        "planner",
        "queries",
    )
    hops = job_from_args(["research", "Q?", "--sub-question-use", "hops"])
    assert isinstance(hops, ResearchJob) and hops.sub_question_use == "hops"
    extract = job_from_args(
        [
            "extract",
            "sample_docs/contracts",
            "--schema",
            "sample_docs/contract_schema.py:Contract",
            "--out",
            "x",
            "--per-item",
        ]
    )
    assert isinstance(extract, ExtractJob) and extract.per_item
