"""`maestro summarize` as a user runs it: real ingestion, a scripted model behind a real HTTP
endpoint on 127.0.0.1, the run store, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.testing import ModelCall

from ..orchestration.conftest import evidence
from .conftest import Maestro
from .test_pipelines_cli import HASHING, env_for, serve

CALL = """Contoso FY25 Second Quarter Earnings Call

AMY HOOD: Revenue was $12.4 billion, up 11%, ahead of our guidance.
Cloud segment revenue grew 21% to $5.1 billion. Gross margin was 68%.
For the third quarter we expect revenue between $12.6 and $12.9 billion.
Foreign exchange remains a headwind to revenue growth.

ANALYST: Thank you for taking my question. How should we think about capital expenditure?
SATYA NADELLA: Capital expenditure will grow as we build out cloud capacity.
"""


def quoting(invent: str | None = None) -> Any:
    """A model whose bullets repeat the evidence sentences that state a figure (so every
    figure is grounded), or, for the revenue section, state ``invent`` instead."""

    def answer(call: ModelCall) -> dict[str, Any]:
        shown = evidence(call)
        ids = [i for i, text in shown.items() if re.search(r"\d", text)][:2]
        claims = [{"text": shown[i], "evidence": [i]} for i in ids]
        if invent and "Revenue and margins" in call.last_user:
            claims = [{"text": invent, "evidence": ids[:1]}]
        return {"answer": "In brief.", "claims": claims}

    return answer


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "calls" / "contoso_fy25q2.txt"
    path.parent.mkdir()
    path.write_text(CALL)
    return path


def test_summarize_writes_a_cited_summary_and_records_the_run(
    maestro: Maestro, transcript: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with serve(default=quoting()) as server:
        result = maestro("summarize", str(transcript), "--out", str(out), env=env_for(server))
        assert len(server.requests) == 7  # six sections and the takeaways
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("# Earnings call summary")
    for heading in ("Results against guidance", "Revenue and margins", "Outlook", "Notable Q&A"):
        assert f"\n## {heading}\n" in result.stdout
    assert "done" in result.stderr  # live progress of the steps
    data = json.loads((out / "summary.json").read_text())
    assert data["status"] == "passed"
    assert (out / "summary.md").read_text().startswith("# Earnings call summary")
    citations = [c for s in data["sections"] for b in s["bullets"] for c in b["citations"]]
    assert citations and all(
        Path(c["path"]).read_text()[c["start"] : c["end"]] == c["quote"] for c in citations
    )
    assert all(b["ungrounded"] == [] for s in data["sections"] for b in s["bullets"])
    shown = maestro("runs", "show", data["run_id"], env=HASHING)
    assert shown.returncode == 0 and data["run_id"] in shown.stdout


def test_an_invented_figure_is_marked_and_the_run_is_unmet(
    maestro: Maestro, transcript: Path
) -> None:
    with serve(default=quoting(invent="Revenue grew 99%.")) as server:
        result = maestro("summarize", str(transcript), env=env_for(server))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "- Revenue grew 99%. [" in result.stdout
    assert "(not in the cited text: 99%)" in result.stdout
    assert "revenue.figures" in result.stdout


def test_several_calls_get_a_folder_each(
    maestro: Maestro, transcript: Path, tmp_path: Path
) -> None:
    other = transcript.with_name("contoso_fy25q3.txt")
    other.write_text(CALL.replace("Second", "Third").replace("$12.4", "$13.0"))
    out = tmp_path / "out"
    with serve(default=quoting()) as server:
        result = maestro(
            "summarize", str(transcript), str(other), "--out", str(out), env=env_for(server)
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("# Earnings call summary") == 2
    for stem in ("contoso_fy25q2", "contoso_fy25q3"):
        assert json.loads((out / stem / "summary.json").read_text())["document"]["path"].endswith(
            f"{stem}.txt"
        )


@pytest.mark.parametrize("problem", ["missing", "empty", "blank"])
def test_a_file_without_text_is_one_line_and_exit_2(
    maestro: Maestro, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / f"{problem}.txt"
    if problem == "empty":
        path.write_text("")
    elif problem == "blank":
        path.write_text("\n   \n\t\n")
    result = maestro("summarize", str(path), env=HASHING)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
