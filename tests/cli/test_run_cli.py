"""`maestro run` end to end as a user runs it: real ingestion, real HTTP model endpoint."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.testing import OpenAICompatibleServer, responder_from

from ..orchestration.conftest import V1, V2
from ..orchestration.test_orchestrator import (
    answer_notice,
    judge_mentions,
    notice_plan,
    routed,
)
from .conftest import Maestro

TASK = "How did the notice period change?"


@pytest.fixture
def ingested(maestro: Maestro, tmp_path: Path) -> dict[str, str]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)
    env = {"MAESTRO_EMBEDDER": "hashing"}
    result = maestro("ingest", str(docs), "--corpus", "contracts", env=env)
    assert result.returncode == 0, result.stderr
    return env


def _serve(vague: bool = False) -> OpenAICompatibleServer:
    model = routed(
        notice_plan,
        lambda c: answer_notice(c, vague_synthesis=vague),
        judge_mentions("90 days", "60 days"),
    )
    route: Any = model._function  # the same routing function, served over real HTTP
    return OpenAICompatibleServer(responder_from(route), model_ids=["test-model"])


def _env(base: dict[str, str], server: OpenAICompatibleServer) -> dict[str, str]:
    return {
        **base,
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": server.base_url,
        "MAESTRO_MODEL": "test-model",
    }


def test_run_prints_the_cited_answer_and_the_requirement_table(
    maestro: Maestro, ingested: dict[str, str]
) -> None:
    with _serve() as server:
        result = maestro(
            "run",
            TASK,
            "--corpus",
            "contracts",
            "--budget",
            "low",
            "--require",
            "state both notice periods",
            env=_env(ingested, server),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Notice fell from 90 days (2023) to 60 days (2025)." in result.stdout
    assert "agreement_2023.txt" in result.stdout and "agreement_2025.txt" in result.stdout
    assert "state both notice periods" in result.stdout and "FAIL" not in result.stdout
    # Live progress goes to stderr.
    assert "plan (planner) 3 step(s)" in result.stderr
    assert "s1 done" in result.stderr and "passed in" in result.stderr
    assert len(server.requests) == 5  # plan, three steps, one judge call


def test_run_json_and_exit_code_for_unmet_requirements(
    maestro: Maestro, ingested: dict[str, str]
) -> None:
    with _serve(vague=True) as server:
        result = maestro(
            "run",
            TASK,
            "--corpus",
            "contracts",
            "--budget",
            "low",
            "--json",
            "--require",
            "state both notice periods",
            env=_env(ingested, server),
        )
    assert result.returncode == 3, result.stderr  # unmet
    data = json.loads(result.stdout)
    assert data["status"] == "unmet"
    unmet = [r for r in data["requirements"] if not r["passed"]]
    assert [r["id"] for r in unmet] == ["r1"]
    for citation in data["citations"]:
        text = Path(citation["path"]).read_text()
        assert text[citation["start"] : citation["end"]] == citation["quote"]


def test_run_on_an_unknown_corpus_is_one_line(maestro: Maestro, ingested: dict[str, str]) -> None:
    with _serve() as server:
        result = maestro("run", TASK, "--corpus", "nope", env=_env(ingested, server))
    assert result.returncode == 2
    assert "no corpus named 'nope'" in result.stderr and "Traceback" not in result.stderr


class Overlapping:
    """Answers like the scenario's model, but holds each of the two parallel reading steps
    until the other one has arrived too (or a while has passed): unlimited, they are in
    flight together; limited to one call at a time, they cannot be."""

    def __init__(self) -> None:
        model = routed(notice_plan, answer_notice, judge_mentions("90 days", "60 days"))
        self.answer = responder_from(model._function)
        self.lock = threading.Lock()
        self.readers = 0
        self.both = threading.Event()

    def __call__(self, body: dict[str, Any]) -> str | dict[str, Any]:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if "Your step (answer): Notice period" in user:
            with self.lock:
                self.readers += 1
                if self.readers == 2:
                    self.both.set()
            self.both.wait(timeout=3)
        return self.answer(body)


@pytest.mark.parametrize(("limit", "peak"), [(None, 2), ("1", 1)])
def test_run_honours_the_provider_limits_of_the_settings(
    maestro: Maestro, ingested: dict[str, str], limit: str | None, peak: int
) -> None:
    with OpenAICompatibleServer(Overlapping(), model_ids=["test-model"]) as server:
        env = _env(ingested, server)
        if limit is not None:
            env["MAESTRO_MAX_CONCURRENT"] = limit
        result = maestro("run", TASK, "--corpus", "contracts", "--budget", "low", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.max_in_flight == peak  # counted by the server itself


def test_a_run_falls_back_to_the_configured_model_and_records_which_answered(
    maestro: Maestro, ingested: dict[str, str]
) -> None:
    refusing = OpenAICompatibleServer(lambda body: "unused", faults=["401"] * 100)
    with refusing, _serve() as backup:
        env = {
            **_env(ingested, refusing),
            "MAESTRO_FALLBACK_MODEL": "openai:backup-model",
            "MAESTRO_FALLBACK_BASE_URL": backup.base_url,
        }
        result = maestro("run", TASK, "--corpus", "contracts", "--budget", "low", "--json", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)
        assert "Notice fell from 90 days (2023) to 60 days (2025)." in data["output_text"]
        # A 401 is permanent: each call (the plan, three steps) is refused once, not
        # retried, and answered by the backup.
        assert len(refusing.requests) == len(backup.requests) == 4
        assert {body["model"] for body in backup.requests} == {"backup-model"}
        steps = data["steps"].values()
        assert {step["model"] for step in steps} == {"openai:backup-model"}
        refused = [a for step in steps for a in step["attempts"] if a["outcome"] == "error"]
        assert len(refused) == 3 and all("HTTP 401" in a["error"] for a in refused)
        assert {a["model"] for a in refused} == {"openai:test-model"}
        shown = maestro("runs", "show", data["run_id"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert "1 not ok" in shown.stdout and "openai:backup-model" in shown.stdout
