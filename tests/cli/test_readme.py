"""The README's 30-second example, in Python and on the CLI, runs as written: the same code
and commands, against a real HTTP model endpoint on 127.0.0.1 that plays the model."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.models import ModelCall
from maestro_lite.testing import OpenAICompatibleServer, responder_from

from ..orchestration.conftest import cite, step_of
from .conftest import Maestro

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = README.split("## 30-second example", 1)[1].split("## How a run works", 1)[0]


def _plan(call: ModelCall) -> dict[str, Any]:
    """One step per agreement (found by year in the planner's document list), then compare."""
    listing = dict(re.findall(r"^(D\d+): (.*)$", call.last_user, re.MULTILINE))
    handle = {year: next(h for h, t in listing.items() if year in t) for year in ("2023", "2025")}
    steps: list[dict[str, Any]] = [
        {
            "id": f"s{n}",
            "kind": "answer",
            "instruction": f"Termination notice period in the {year} agreement",
            "depends_on": [],
            "queries": ["termination for breach notice days"],
            "documents": [handle[year]],
        }
        for n, year in enumerate(("2023", "2025"), start=1)
    ]
    steps.append(
        {
            "id": "s3",
            "kind": "synthesize",
            "instruction": "Compare the two notice periods",
            "depends_on": ["s1", "s2"],
            "queries": [],
            "documents": [],
        }
    )
    return {"rationale": "Each agreement's clause, then the change.", "steps": steps}


def _step(call: ModelCall) -> dict[str, Any]:
    step = step_of(call)
    if "2023" in step:
        return {
            "answer": "90 days.",
            "claims": [{"text": "90 days", "evidence": cite(call, "90 days")}],
        }
    if "2025" in step:
        return {
            "answer": "60 days.",
            "claims": [{"text": "60 days", "evidence": cite(call, "60 days")}],
        }
    return {
        "answer": "Notice for breach fell from 90 days (2023) to 60 days (2025).",
        "claims": [
            {"text": "The 2023 agreement: 90 days", "evidence": cite(call, "90 days")},
            {"text": "The 2025 agreement: 60 days", "evidence": cite(call, "60 days")},
        ],
    }


def _judge(call: ModelCall) -> dict[str, Any]:
    output = call.last_user.split("Output:\n", 1)[1].split("\n\nEvidence", 1)[0]
    met = "90 days" in output and "60 days" in output
    return {"r1": {"reason": "both periods stated", "verdict": "met" if met else "not met"}}


def _route(call: ModelCall) -> Any:
    match call.schema_title:
        case "PlanDraft":
            return _plan(call)
        case "Verdicts":
            return _judge(call)
        case _:
            return _step(call)


@pytest.fixture
def endpoint() -> Any:
    with OpenAICompatibleServer(responder_from(_route), model_ids=["test-model"]) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with the README's relative paths (sample_docs/contracts) in it."""
    shutil.copytree(ROOT / "sample_docs" / "contracts", tmp_path / "sample_docs" / "contracts")
    return tmp_path


def _env(server: OpenAICompatibleServer, home: Path) -> dict[str, str]:
    return {
        "MAESTRO_HOME": str(home),
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "test",
        "MAESTRO_MODEL": "test-model",
        "MAESTRO_EMBEDDER": "hashing",
    }


def test_the_python_example_runs_as_written(
    endpoint: OpenAICompatibleServer, workdir: Path
) -> None:
    code = re.search(r"```python\n(.*?)```", EXAMPLE, re.DOTALL)
    assert code, "the README's 30-second example has no Python block"
    script = workdir / "example.py"
    script.write_text(code.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "OPENAI_"))}
    env.update(_env(endpoint, workdir / "home"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2 ingested"), lines[0]  # the ingest report's summary
    assert lines[1] == "passed Notice for breach fell from 90 days (2023) to 60 days (2025).", lines
    # Citations print as "title p.N: quote"; quotes keep the PDF's line breaks.
    text = " ".join(done.stdout.split())
    cited = re.findall(r"Supply Agreement \((\d{4})\)[^:]*? p\.\d+: ", text)
    assert sorted(set(cited)) == ["2023", "2025"], text
    assert "90 days' written notice" in text and "60 days' written notice" in text, text
    checks = dict(re.findall(r"^(\S+) (True|False) ", done.stdout, re.MULTILINE))
    assert checks["r1"] == checks["r2"] == "True", checks  # judged, and the exact length check


def test_the_cli_example_runs_as_written(
    maestro: Maestro, endpoint: OpenAICompatibleServer, workdir: Path
) -> None:
    block = re.search(r"CLI:\n\n```bash\n(.*?)```", EXAMPLE, re.DOTALL)
    assert block, "the README's 30-second example has no CLI block"
    commands = [
        c.split("#", 1)[0].strip()
        for c in block.group(1).replace("\\\n", " ").splitlines()
        if c.strip()
    ]
    assert [c.split()[:2] for c in commands] == [
        ["maestro", "ingest"],
        ["maestro", "run"],
        ["maestro", "runs"],
    ]
    env = _env(endpoint, workdir / "home")
    outputs = []
    for command in commands:
        done = maestro(*shlex.split(command)[1:], env=env, cwd=workdir)
        assert done.returncode == 0, command + "\n" + done.stdout + done.stderr
        outputs.append(done.stdout)
    ingest, run, runs = outputs
    assert "2 ingested" in ingest
    assert "90 days" in run and "60 days" in run and "passed" in run
    assert "passed" in runs and "How did the" in runs  # the task, as the table wraps it
