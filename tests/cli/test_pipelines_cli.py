"""`maestro research|compare|extract|demo|eval` as a user runs them: real ingestion, a real
HTTP model endpoint on 127.0.0.1 driven by a scripted function."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.testing import ModelCall, OpenAICompatibleServer, responder_from

from ..orchestration.conftest import V1, V2, cite, evidence, step_of
from .conftest import Maestro

HASHING = {"MAESTRO_EMBEDDER": "hashing"}


def serve(**handlers: Any) -> OpenAICompatibleServer:
    def route(call: ModelCall) -> Any:
        title = call.schema_title or ""
        handler = handlers.get(title) or handlers["default"]
        return handler(call)

    return OpenAICompatibleServer(responder_from(route), model_ids=["test-model"])


def env_for(server: OpenAICompatibleServer) -> dict[str, str]:
    return {
        **HASHING,
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "test",
        "MAESTRO_MODEL": "test-model",
    }


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    docs = tmp_path / "contracts"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)
    (docs / "_drafts").mkdir()  # skipped, like sample_docs/_src
    (docs / "_drafts" / "old.txt").write_text("A draft that must not be read.")
    return docs


def cite_days(call: ModelCall) -> dict[str, Any]:
    ids = cite(call, "days")
    return {"answer": "The notice clause applies.", "claims": [{"text": "Notice", "evidence": ids}]}


def test_research_writes_a_cited_report(maestro: Maestro, contracts: Path, tmp_path: Path) -> None:
    with serve(
        _SubQuestions=lambda call: {"sub_questions": ["What notice period applies?"]},
        default=cite_days,
    ) as server:
        out = tmp_path / "out"
        command = (
            "research",
            "What notice period applies?",
            "--docs",
            str(contracts),
            "--out",
            str(out),
            "--no-default-requirements",
        )
        result = maestro(*command, env=env_for(server))
        asked = len(server.requests)
        # The disk cache answers an identical run; --no-cache asks the model again.
        again = maestro(*command, env=env_for(server))
        assert again.returncode == 0 and "0 call(s)" in again.stdout
        assert again.stdout.split("## Sources")[0] == result.stdout.split("## Sources")[0]
        assert len(server.requests) == asked > 0
        fresh = maestro(*command, "--no-cache", env=env_for(server))
        assert fresh.returncode == 0 and len(server.requests) == 2 * asked
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# Research report" in result.stdout and "## Sources" in result.stdout
    assert "answer done" in result.stderr  # live progress
    report = json.loads((out / "research.json").read_text())
    assert report["status"] == "passed"
    quotes = [c for claim in report["claims"] for c in claim["citations"]]
    assert quotes and all(
        Path(c["path"]).read_text()[c["start"] : c["end"]] == c["quote"] for c in quotes
    )
    assert all("_drafts" not in d["path"] for d in report["consulted"])
    assert (out / "research.md").read_text().startswith("# Research report")


def test_compare_aligns_the_documents(maestro: Maestro, contracts: Path, tmp_path: Path) -> None:
    def answer(call: ModelCall) -> dict[str, Any]:
        if step_of(call).startswith("What does"):
            return cite_days(call)
        return {
            "answer": "Notice fell from 90 to 60 days.",
            "claims": [
                {"text": "90 days in 2023", "evidence": cite(call, "90 days")},
                {"text": "60 days in 2025", "evidence": cite(call, "60 days")},
            ],
        }

    with serve(default=answer) as server:
        result = maestro(
            "compare",
            str(contracts / "agreement_2023.txt"),
            str(contracts / "agreement_2025.txt"),
            "--aspect",
            "termination notice",
            "--out",
            str(tmp_path / "out"),
            env=env_for(server),
        )
        assert len(server.requests) == 3  # two documents, one comparison
    assert result.returncode == 0, result.stdout + result.stderr
    assert "## termination notice" in result.stdout
    assert re.search(r"\| agreement_2025 \| Notice \[\d\] \|", result.stdout), result.stdout
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [p["title"] for p in saved["aspects"][0]["positions"]] == [
        "agreement_2023",
        "agreement_2025",
    ]


def test_extract_writes_every_format_and_resumes(
    maestro: Maestro, contracts: Path, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps(
            {
                "title": "Terms",
                "type": "object",
                "properties": {
                    "governing_law": {"type": "string", "description": "the governing law"},
                    "notice_days": {"type": "integer", "description": "termination notice"},
                },
            }
        )
    )

    def extract(call: ModelCall) -> dict[str, Any]:
        state = "Delaware" if "Delaware" in call.last_user else "New York"
        return {
            "governing_law": {"value": state, "evidence": cite(call, "governed")},
            "notice_days": {"value": None, "missing_reason": "not asked in days"},
        }

    out = tmp_path / "records"
    args = ("extract", str(contracts), "--schema", str(schema), "--out", str(out))
    with serve(default=extract) as server:
        first = maestro(*args, env=env_for(server))
        again = maestro(*args, env=env_for(server))
        assert len(server.requests) == 2  # the second run asked nothing
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 extracted, 0 failed" in first.stdout
    assert again.returncode == 0 and "0 extracted, 0 failed, 2 skipped" in again.stdout
    with (out / "records.csv").open(newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: r["governing_law"])
    assert [r["governing_law"] for r in rows] == ["Delaware", "New York"]
    assert rows[0]["notice_days__missing_reason"] == "not asked in days"
    assert rows[0]["governing_law__source"].startswith("p.1: This Agreement is governed")
    with sqlite3.connect(out / "records.sqlite") as db:
        count = db.execute('SELECT count(*) FROM "records"').fetchone()[0]
    db.close()
    assert count == 2 and len((out / "records.jsonl").read_text().splitlines()) == 2


def test_demo_researches_the_sample_documents(maestro: Maestro) -> None:
    def answer(call: ModelCall) -> dict[str, Any]:
        ids = cite(call, "launch")[:2]
        return {"answer": "The sources disagree.", "claims": [{"text": "Dates", "evidence": ids}]}

    def judge(call: ModelCall) -> dict[str, Any]:
        ids = re.findall(r"^(\w+): ", call.last_user.split("Requirements:\n", 1)[1], re.M)
        return {i: {"reason": "yes", "verdict": "met"} for i in ids}

    with serve(
        _SubQuestions=lambda call: {"sub_questions": ["When will the Skylark S3 launch?"]},
        Verdicts=judge,
        default=answer,
    ) as server:
        result = maestro("demo", env=env_for(server))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quotes checked against the stored source text: all verified" in result.stdout
    assert "corpus sample-research: 7 document(s)" in result.stderr


def test_eval_names_the_known_evals(maestro: Maestro) -> None:
    result = maestro("eval", "nope")
    assert result.returncode == 2
    assert "no eval named 'nope'" in result.stderr
    assert "multihop" in result.stderr and "cuad" in result.stderr


ROOT = Path(__file__).resolve().parents[2]
# Each field of sample_docs/contract_schema.py:Contract: the sentence that states it, and
# the value as the sentence writes it.
CONTRACT_FIELDS = {
    "parties": (r"The parties to this Agreement are (.*?), as Supplier, and (.*?), as Buyer"),
    "agreement_date": r"is dated (\w+ \d{1,2}, \d{4})",
    "effective_date": r"takes effect on (\w+ \d{1,2}, \d{4})",
    "expiration_date": r"expires on (\w+ \d{1,2}, \d{4})",
    "governing_law": r"governed by the laws of the State of ([A-Z]\w+(?: [A-Z]\w+)?)",
}


def contract_fields(call: ModelCall) -> dict[str, Any]:
    shown = evidence(call)
    answer: dict[str, Any] = {}
    for field in json.loads(json.dumps(call.json_schema))["properties"]:
        pattern = CONTRACT_FIELDS.get(field)
        hit = next(
            ((i, m) for i, t in shown.items() if pattern and (m := re.search(pattern, t))), None
        )
        if hit is None:
            answer[field] = {"value": None, "missing_reason": "not in the evidence shown"}
            continue
        sentence, match = hit
        value: Any = list(match.groups()) if field == "parties" else match.group(1)
        answer[field] = {"value": value, "evidence": [sentence]}
    return answer


def test_the_readme_extract_command_runs_as_written(maestro: Maestro, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^maestro (extract sample_docs/.*?)\s+#", readme, re.M | re.S)
    assert command, "the README shows no `maestro extract` command"
    args = command.group(1).replace("\\\n", " ").split()
    # The command as written, run where sample_docs/ is (a copy, so outputs land in tmp).
    shutil.copytree(ROOT / "sample_docs" / "contracts", tmp_path / "sample_docs" / "contracts")
    shutil.copy(ROOT / "sample_docs" / "contract_schema.py", tmp_path / "sample_docs")
    with serve(default=contract_fields) as server:
        result = maestro(*args, env=env_for(server), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 extracted, 0 failed, 0 skipped" in result.stdout
    out = tmp_path / "extracted"
    with (out / "records.csv").open(newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: r["path"])
    assert [Path(r["path"]).name for r in rows] == [
        "supply_agreement_2023.pdf",
        "supply_agreement_2025.pdf",
    ]
    assert [r["governing_law"] for r in rows] == ["New York", "Delaware"]
    assert [r["effective_date"] for r in rows] == ["April 1, 2023", "February 1, 2025"]
    assert rows[1]["governing_law__source"].startswith("p.4: This Agreement is governed by")
    assert rows[0]["cap_on_liability__missing_reason"] == "not in the evidence shown"
    with sqlite3.connect(out / "records.sqlite") as db:
        assert db.execute('SELECT count(*) FROM "records"').fetchone()[0] == 2
    db.close()


def test_extract_per_item_writes_a_row_per_item_and_resumes_what_is_left(
    maestro: Maestro, tmp_path: Path
) -> None:
    docs = tmp_path / "agreements"
    docs.mkdir()
    (docs / "alpha.txt").write_text(
        "This Agreement is between Calder Inc. as Supplier and Brightline Corp. as Buyer."
    )
    (docs / "beta.txt").write_text("This License is between Orion LLC as Licensor.")
    schema = tmp_path / "party.json"
    schema.write_text(
        json.dumps(
            {
                "title": "Party",
                "type": "object",
                "properties": {"role": {"type": "string", "description": "the party's role"}},
            }
        )
    )
    failing = ["Orion"]

    def answer(call: ModelCall) -> Any:
        if call.schema_title == "ExtractedPartyList":
            if failing and "Orion" in call.prompt:
                return "not json"  # beta fails on the first run, every re-ask too
            names = re.findall(r"(\w+ (?:Inc|Corp|LLC)\.?) as", call.last_user)
            return {"items": {"value": names, "evidence": cite(call, "between")}}
        name = re.search(r"of '(.*?)'", step_of(call))
        assert name, step_of(call)
        role = re.search(re.escape(name.group(1)) + r" as (\w+)", call.last_user)
        assert role, call.last_user
        return {"role": {"value": role.group(1), "evidence": cite(call, role.group(0))}}

    out = tmp_path / "parties"
    args = ("extract", str(docs), "--schema", str(schema), "--per-item", "--out", str(out))
    with serve(default=answer) as server:
        first = maestro(*args, env=env_for(server))
        failing.clear()
        again = maestro(*args, env=env_for(server))
    assert first.returncode == 1 and "1 extracted, 1 failed" in first.stdout
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 extracted, 0 failed, 1 skipped" in again.stdout
    # The bar counts the document left to do, not the one already extracted.
    assert re.search(r"extract .* 1/1 ", again.stderr), again.stderr
    with (out / "records.csv").open(newline="") as handle:
        rows = [
            (Path(r["path"]).stem, r["item_index"], r["item_label"], r["role"])
            for r in csv.DictReader(handle)
        ]
    assert sorted(rows) == [
        ("alpha", "1", "Calder Inc.", "Supplier"),
        ("alpha", "2", "Brightline Corp.", "Buyer"),
        ("beta", "1", "Orion LLC", "Licensor"),
    ]


def test_compare_needs_two_documents(maestro: Maestro, contracts: Path) -> None:
    result = maestro("compare", str(contracts / "agreement_2023.txt"), "--aspect", "x", env=HASHING)
    assert result.returncode == 2
    assert "a comparison needs at least two documents, got 1" in result.stderr
