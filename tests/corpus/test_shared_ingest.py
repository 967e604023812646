"""Several writers on one corpus: claims in the store keep each content embedded once.

The two-machine test runs real processes against a real `chroma run` on loopback; the
others use the embedded store and a second writer's claims made by hand.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.corpus import Corpus, IngestEvent, IngestReport
from maestro_lite.corpus._claims import Claims
from maestro_lite.documents.loaders import document_id
from maestro_lite.documents.model import DocumentInfo
from maestro_lite.settings import Settings
from maestro_lite.store import ChromaStore, Claim, CorpusConfig, StoredDocument
from maestro_lite.testing import HashingEmbedder

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ("revenue", "liquidity", "litigation", "inventory", "pensions", "tariffs")


def _folder(root: Path, count: int) -> list[Path]:
    """``count`` small text files of distinct content, plus two copies of one text."""
    root.mkdir(parents=True)
    files = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        path = root / f"note{i:02d}.txt"
        path.write_text(
            "\n\n".join(f"Note {i} on {topic}, paragraph {j}. " * 12 for j in range(4)), "utf-8"
        )
        files.append(path)
    for name in ("copy-a.txt", "copy-b.txt"):
        (root / name).write_text("A memo kept twice, about tariffs and revenue.", "utf-8")
        files.append(root / name)
    return files


def _child(*args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("MAESTRO_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.corpus.ingest_child", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(child: subprocess.Popen[str]) -> Any:
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


async def _state(url: str, name: str) -> tuple[dict[str, list[str]], list[str], list[Claim]]:
    """Documents (id -> paths), chunk ids and claims of a corpus on the server."""
    store = ChromaStore.connect(url)
    records = await store.documents(name)
    assert all(r.complete and not r.deleting and not r.replaces for r in records)
    chunk_ids = [c.id for batch in [b async for b in store.scan_chunks(name)] for c in batch]
    return (
        {r.info.id: sorted(r.info.paths) for r in records},
        sorted(chunk_ids),
        await store.claims(name),
    )


async def _ingest_alone(url: str, name: str, home: Path, folder: Path) -> tuple[IngestReport, int]:
    embedder = HashingEmbedder()
    settings = Settings(home=home, chroma_url=url)
    async with await Corpus.open(name, settings=settings, embedder=embedder) as corpus:
        report = await corpus.ingest([folder])
    return report, sum(embedder.calls)


def test_two_machines_ingest_one_folder_at_once_as_one_ingest_would(
    shared_chroma: str, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    files = {str(f) for f in _folder(folder, 36)}
    machines = [_child("ingest", shared_chroma, "shared", tmp_path / m, folder) for m in "ab"]
    try:
        for machine in machines:
            assert machine.stdout is not None and machine.stdout.readline().strip() == "ready"
        for machine in machines:  # both go at the same moment
            assert machine.stdin is not None
            machine.stdin.write("go\n")
            machine.stdin.flush()
        results = [_result(machine) for machine in machines]
    finally:
        for machine in machines:
            if machine.poll() is None:
                machine.kill()
                machine.communicate()
    a, b = (IngestReport.model_validate(r["report"]) for r in results)

    alone, alone_embedded = asyncio.run(
        _ingest_alone(shared_chroma, "alone", tmp_path / "c", folder)
    )
    assert alone.ok and len(alone.ingested) == 37  # the two copies are one document
    for report in (a, b):
        assert report.ok and report.recovered == 0
        # Every file is accounted for: stored by this machine, or found stored by the other.
        assert {i.path for i in report.ingested} | set(report.unchanged) == files
    mine = [{i.id for i in r.ingested} for r in (a, b)]
    assert mine[0] and mine[1] and not mine[0] & mine[1]  # each did part, none twice
    assert mine[0] | mine[1] == {i.id for i in alone.ingested}
    # Each file embedded once: together they embedded what one ingestion embeds.
    assert results[0]["embedded"] + results[1]["embedded"] == alone_embedded == alone.chunks

    documents, chunk_ids, claims = asyncio.run(_state(shared_chroma, "shared"))
    assert (documents, chunk_ids) == asyncio.run(_state(shared_chroma, "alone"))[:2]
    assert chunk_ids == sorted(f"{i.id}:{n}" for i in alone.ingested for n in range(i.chunks))
    assert claims == []  # every claim released

    again, embedded = asyncio.run(_ingest_alone(shared_chroma, "shared", tmp_path / "a", folder))
    assert embedded == 0 and set(again.unchanged) == files  # an unchanged folder: no work

    # A third machine, with a home of its own: dense search on the server, and a lexical
    # index it builds from the server, both find what each machine stored.
    found = _result(_child("search", shared_chroma, "shared", tmp_path / "d", "tariffs note"))
    for mode in ("dense", "lexical"):
        assert set(found[mode]) & mine[0] and set(found[mode]) & mine[1], mode


def _three_files(root: Path) -> tuple[Path, list[str]]:
    root.mkdir()
    ids = []
    for i in range(3):
        data = f"File {i} about {TOPICS[i]}.".encode()
        (root / f"f{i}.txt").write_bytes(data)
        ids.append(document_id(data))
    return root, ids


async def test_a_file_another_writer_holds_waits_and_is_ingested_when_it_gives_up(
    corpus: Corpus, tmp_path: Path
) -> None:
    folder, ids = _three_files(tmp_path / "docs")
    other = Claims(corpus.store, corpus.name)
    assert await other.take(ids[0])
    two_done = asyncio.Event()

    def progress(event: IngestEvent) -> None:
        if event.files_done == 2:
            two_done.set()

    run = asyncio.create_task(corpus.ingest([folder], progress=progress))
    await asyncio.wait_for(two_done.wait(), timeout=60)
    assert not run.done()  # the held file keeps it waiting
    await other.release([ids[0]])  # the other writer failed on it: this one takes over
    report = await asyncio.wait_for(run, timeout=60)
    assert sorted(i.id for i in report.ingested) == sorted(ids)
    assert await corpus.store.claims(corpus.name) == []


def _dead_pid() -> int:
    """The pid of a process of this machine that has exited."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


async def test_claims_of_dead_or_lapsed_writers_are_taken_over(
    corpus: Corpus, tmp_path: Path
) -> None:
    folder, ids = _three_files(tmp_path / "docs")
    dead = _dead_pid()
    store = corpus.store
    # A process of this machine that died holding a claim, with its record half-written ...
    await store.add_claims(
        corpus.name,
        [Claim(key=ids[0], owner="dead", host=socket.gethostname(), pid=dead, expires=1e12)],
    )
    info = DocumentInfo(
        id=ids[0], title="f0", path=str(folder / "f0.txt"), pages=1, chars=1, chunks=1
    )
    await store.put_documents(corpus.name, [StoredDocument(info=info, complete=False)])
    # ... and a writer elsewhere whose lease ran out.
    await store.add_claims(
        corpus.name,
        [Claim(key=ids[1], owner="gone", host="elsewhere", pid=1, expires=time.time() - 1)],
    )
    report = await corpus.ingest([folder])
    assert report.recovered == 1
    assert sorted(i.id for i in report.ingested) == sorted(ids)
    assert await store.claims(corpus.name) == []  # taken over, then released, old ones too


async def test_an_incomplete_record_a_live_writer_holds_is_not_recovered(
    corpus: Corpus, tmp_path: Path
) -> None:
    folder, _ = _three_files(tmp_path / "docs")
    other = Claims(corpus.store, corpus.name)
    assert await other.take("busy0123456789ab")
    info = DocumentInfo(id="busy0123456789ab", title="x", path="/x.txt", pages=1, chars=1, chunks=0)
    await corpus.store.put_documents(corpus.name, [StoredDocument(info=info, complete=False)])

    first = await corpus.ingest([folder])
    assert first.recovered == 0 and len(first.ingested) == 3
    assert [r.complete for r in await corpus.store.documents(corpus.name, [info.id])] == [False]

    await other.release([info.id])  # it died without finishing: now it is abandoned
    assert (await corpus.ingest([folder])).recovered == 1
    assert await corpus.store.documents(corpus.name, [info.id]) == []


async def test_files_ingested_one_by_one_by_two_writers_at_once_are_each_embedded_once(
    settings: Settings, tmp_path: Path
) -> None:
    files = _folder(tmp_path / "docs", 10)
    store = ChromaStore.from_settings(settings)
    embedders = [HashingEmbedder(), HashingEmbedder()]
    writers = [
        await Corpus.open("c", settings=settings, embedder=e, store=store) for e in embedders
    ]
    try:
        # As a cluster fans files out: every file handed to both writers at once.
        reports = await asyncio.gather(*(w.ingest_file(f) for f in files for w in writers))
        assert all(r.ok for r in reports)
        documents = await writers[0].documents()
        assert len(documents) == 11
        copies = next(d for d in documents if len(d.paths) > 1)
        assert sorted(copies.paths) == sorted(str(f) for f in files[-2:])
        stored = sum(d.chunks for d in documents)
        assert sum(embedders[0].calls) + sum(embedders[1].calls) == stored
        assert sum(len(r.ingested) for r in reports) == 11
        assert await store.claims("c") == []
    finally:
        await store.close()


async def test_a_corpus_created_by_two_machines_at_once_keeps_the_first_config(
    shared_chroma: str,
) -> None:
    first, second = ChromaStore.connect(shared_chroma), ChromaStore.connect(shared_chroma)
    made = datetime.now(UTC)
    mine = CorpusConfig(embedder="e1", chunk_tokens=100, overlap_tokens=10, created_at=made)
    theirs = mine.model_copy(update={"chunk_tokens": 200})
    # Both found no corpus; the second one's create comes just after the first's.
    await first.create_corpus("created-twice", mine)
    await second.create_corpus("created-twice", theirs)
    assert await second.corpus_config("created-twice") == mine


async def test_claims_are_renewed_while_kept_and_released_on_the_way_out(corpus: Corpus) -> None:
    claims = Claims(corpus.store, corpus.name, lease=3.0)
    async with claims.kept():
        assert await claims.take("k")
        first = (await corpus.store.claims(corpus.name))[0].expires
        for _ in range(400):  # until the renewal lands (every lease / 3)
            if (await corpus.store.claims(corpus.name))[0].expires > first:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the claim was never renewed")
        assert not await Claims(corpus.store, corpus.name).take("k")  # still held
    assert await corpus.store.claims(corpus.name) == []


def test_a_process_killed_mid_ingest_leaves_nothing_another_cannot_finish(
    shared_chroma: str, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    files = {str(f) for f in _folder(folder, 20)}
    stuck = _child("hang", shared_chroma, "killed", tmp_path / "a", folder)
    store = ChromaStore.connect(shared_chroma)

    async def mid_ingest() -> bool:  # claims held and a record written, not completed
        if "killed" not in await store.corpora() or not await store.claims("killed"):
            return False
        return any(not r.complete for r in await store.documents("killed"))

    try:
        for _ in range(600):
            if asyncio.run(mid_ingest()):
                break
            assert stuck.poll() is None, stuck.communicate()[1][-3000:]
            time.sleep(0.1)
        else:
            pytest.fail("the child never got mid-ingestion")
    finally:
        stuck.kill()  # SIGKILL: no cleanup of any kind
        stuck.communicate()
    report, embedded = asyncio.run(_ingest_alone(shared_chroma, "killed", tmp_path / "b", folder))
    assert report.ok and report.recovered >= 1
    assert {i.path for i in report.ingested} | set(report.unchanged) == files
    documents, chunk_ids, claims = asyncio.run(_state(shared_chroma, "killed"))
    assert len(documents) == 21 and claims == []
    assert chunk_ids == sorted(f"{i.id}:{n}" for i in report.ingested for n in range(i.chunks))
    assert embedded == report.chunks
