"""A "machine" of the shared-corpus tests: one process on one Chroma server.

``python -m tests.corpus.ingest_child ingest URL CORPUS HOME FOLDER`` opens the corpus, prints
``ready``, waits for a line on stdin (so that two of them start at the same moment), ingests
the folder with a hashing embedder and prints one JSON line: the report and how many texts it
embedded. ``... search URL CORPUS HOME QUERY`` prints the document ids of the hits of a dense
and a lexical search (the lexical index is built from the server into this HOME).
``... hang URL CORPUS HOME FOLDER`` starts ingesting and never finishes embedding.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from maestro_lite.corpus import Corpus
from maestro_lite.embeddings.base import InputType, Vectors
from maestro_lite.settings import Settings
from maestro_lite.store import ChromaStore, Claim, VectorStore
from maestro_lite.testing import HashingEmbedder


class Rendezvous:
    """A store that, once its writer wins its first claim, waits until another writer holds
    one too: both writers then certainly embed part of the folder, however the operating
    system schedules them (a state to wait for, not a delay). Everything else passes
    through to the real store."""

    def __init__(self, inner: ChromaStore) -> None:
        self.inner = inner
        self.met = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def add_claims(self, corpus: str, claims: Sequence[Claim]) -> dict[str, Claim]:
        stored = await self.inner.add_claims(corpus, claims)
        mine = {c.owner for c in claims}
        if any(c.owner in mine for c in stored.values()) and not self.met:
            self.met = True
            deadline = time.monotonic() + 60  # a bound, so a broken peer fails the test
            while time.monotonic() < deadline:
                if any(c.owner not in mine for c in await self.inner.claims(corpus)):
                    break
                await asyncio.sleep(0.02)
        return stored


async def ingest(url: str, name: str, home: Path, folder: Path) -> None:
    store = ChromaStore.connect(url)
    embedder = HashingEmbedder()
    shared: VectorStore = Rendezvous(store)  # type: ignore[assignment]
    settings = Settings(home=home, chroma_url=url)
    async with await Corpus.open(name, settings=settings, embedder=embedder, store=shared) as c:
        print("ready", flush=True)
        sys.stdin.readline()
        report = await c.ingest([folder])
    print(json.dumps({"report": report.model_dump(mode="json"), "embedded": sum(embedder.calls)}))


class Hanging(HashingEmbedder):
    """An embedder that never returns: the process stays mid-ingestion (claims held,
    records incomplete) until it is killed."""

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def hang(url: str, name: str, home: Path, folder: Path) -> None:
    settings = Settings(home=home, chroma_url=url)
    async with await Corpus.open(name, settings=settings, embedder=Hanging()) as corpus:
        await corpus.ingest([folder])


async def search(url: str, name: str, home: Path, query: str) -> None:
    settings = Settings(home=home, chroma_url=url)
    async with await Corpus.open(
        name, settings=settings, embedder=HashingEmbedder(), create=False
    ) as corpus:
        found = {
            mode: sorted(
                {hit.chunk.document_id for hit in await corpus.search(query, k=100, mode=mode)}
            )
            for mode in ("dense", "lexical")
        }
    print(json.dumps(found))


if __name__ == "__main__":
    command, url, name, home, arg = sys.argv[1:6]
    if command == "ingest":
        asyncio.run(ingest(url, name, Path(home), Path(arg)))
    elif command == "hang":
        asyncio.run(hang(url, name, Path(home), Path(arg)))
    else:
        asyncio.run(search(url, name, Path(home), arg))
