"""A summarize job run by the worker writes what `maestro summarize` writes; a scheduled
command line becomes the same job; a file without text fails the job with its reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from maestro_lite import Settings
from maestro_lite.cli._jobargs import job_from_args
from maestro_lite.scheduling import SQLiteScheduleStore
from maestro_lite.testing import ModelCall
from pipelines.jobs import SummarizeJob

from ..orchestration.conftest import evidence
from .test_pipeline_jobs import finish, model

CALL = (
    "Contoso FY25 Second Quarter Earnings Call. Revenue was $12.4 billion, up 11%. "
    "For the third quarter we expect revenue between $12.6 and $12.9 billion. "
    "Foreign exchange remains a headwind. Thank you for taking my question on margins."
)


def quote_figures(call: ModelCall) -> dict[str, Any]:
    shown = evidence(call)
    ids = [i for i, text in shown.items() if re.search(r"\d", text)][:2]
    return {"answer": "In brief.", "claims": [{"text": shown[i], "evidence": [i]} for i in ids]}


def test_a_scheduled_summarize_command_becomes_a_job(tmp_path: Path) -> None:
    job = job_from_args(["summarize", "calls/q2.txt", "{file}", "-k", "2", "--out", "out"])
    assert isinstance(job, SummarizeJob)
    assert job.files == [str(Path("calls/q2.txt").resolve()), "{file}"]
    assert (job.k, job.budget, job.out) == (2, "low", str(Path("out").resolve()))


async def test_a_summarize_job_writes_each_summary(
    settings: Settings, store: SQLiteScheduleStore, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "q2.txt").write_text(CALL)
    (calls / "q3.txt").write_text(CALL.replace("Second", "Third").replace("12.4", "13.1"))
    (tmp_path / "empty.txt").write_text("")
    out = tmp_path / "out"
    both = SummarizeJob(files=[str(calls)], out=str(out))
    empty = SummarizeJob(files=[str(tmp_path / "empty.txt")], out=str(tmp_path / "none"))
    done, failed = await finish(
        settings, store, model(default=quote_figures), ("both", both), ("empty", empty)
    )
    assert done.status == "passed" and done.outcome is not None, done.error
    assert done.outcome.output.count("# Earnings call summary") == 2
    assert sorted(Path(f).relative_to(out).as_posix() for f in done.outcome.files) == [
        "q2/summary.json",
        "q2/summary.md",
        "q3/summary.json",
        "q3/summary.md",
    ]
    assert json.loads((out / "q3" / "summary.json").read_text())["status"] == "passed"
    assert len(done.run_ids) == 2  # one run per call, both recorded under the job
    assert failed.status == "failed" and failed.outcome is not None
    assert "empty.txt: empty" in (failed.outcome.error or "")
    assert not (tmp_path / "none").exists()
