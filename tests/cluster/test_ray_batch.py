"""`maestro ingest --ray` and `maestro extract --ray` on a real local cluster: the
embedding and each document's extraction run on the nodes, everything is written once in
the command's own process, a bad file is one line and the batch goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from maestro_lite import Corpus, Settings
from maestro_lite.runs import SQLiteRunStore
from maestro_lite.testing import ModelCall
from maestro_lite.testing.ray_cluster import LocalRayCluster as RayCluster

from ..cli.conftest import Maestro
from ..cli.test_pipelines_cli import HASHING, env_for, serve
from ..orchestration.conftest import V1, V2, cite


def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "agreement_2023.txt").write_text(V1)
    (docs / "agreement_2025.txt").write_text(V2)
    (docs / "blank.txt").write_text("")  # no text: one line, the others go on
    return docs


async def hits(home: Path, corpus: str) -> list[tuple[str, float]]:
    settings = Settings(home=home, embedder="hashing")
    async with await Corpus.open(corpus, settings=settings, create=False) as opened:
        found = await opened.search("notice period of termination", k=4, mode="dense")
    return [(h.chunk.text, round(h.score, 5)) for h in found]


async def test_ingest_embeds_on_the_cluster_same_corpus_idempotent(
    maestro: Maestro, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    docs = folder(tmp_path)
    on_ray = ("ingest", str(docs), "--corpus", "onray", "--ray", ray_cluster.address)
    first = maestro(*on_ray, env=HASHING)
    assert first.returncode == 1, first.stdout + first.stderr  # the blank file failed
    assert f"embedding on the Ray cluster at {ray_cluster.address}" in first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    failed = [line for line in first.stdout.splitlines() if "blank.txt" in line]
    assert len(failed) == 1
    assert "2 ingested" in first.stdout
    again = maestro(*on_ray, env=HASHING)
    assert "0 ingested, 0 updated, 2 unchanged" in again.stdout  # written once
    local = maestro("ingest", str(docs), "--corpus", "local", env=HASHING)
    assert "2 ingested" in local.stdout
    home = tmp_path / "home"
    assert await hits(home, "onray") == await hits(home, "local")


def test_extract_runs_each_document_on_the_cluster_and_writes_records_once(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    docs = folder(tmp_path)
    (docs / "blank.txt").unlink()
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps(
            {
                "title": "Terms",
                "type": "object",
                "properties": {
                    "governing_law": {"type": "string", "description": "the governing law"}
                },
            }
        )
    )

    def extract(call: ModelCall) -> dict[str, Any]:
        state = "Delaware" if "Delaware" in call.last_user else "New York"
        return {"governing_law": {"value": state, "evidence": cite(call, "governed")}}

    out = tmp_path / "records"
    home = tmp_path / "home"
    args = [*("extract", str(docs), "--schema", str(schema), "--out", str(out))]
    with serve(default=extract) as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "OPENAI_"))},
            **env_for(server),
            "MAESTRO_HOME": str(home),
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
        command = [sys.executable, "-m", "maestro_lite", *args, "--ray", ray_cluster.address]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stdout + stderr
        assert "2 extracted, 0 failed" in stdout
        again = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert "0 extracted, 0 failed, 2 skipped" in again.stdout
        assert len(server.requests) == 2  # one call per document, none again
    assert f"extracting on the Ray cluster at {ray_cluster.address}" in stderr
    lines = (out / "records.jsonl").read_text().splitlines()
    assert sorted(json.loads(r)["fields"]["governing_law"]["value"] for r in lines) == [
        "Delaware",
        "New York",
    ]
    # The runs were made by the nodes' worker processes, not by the command's.
    with SQLiteRunStore.open(Settings(home=home)) as runs:
        owners = [r.owner for r in runs.list()]
    assert len(owners) == 2
    assert all(o is not None and not o.endswith(f":{process.pid}") for o in owners)
