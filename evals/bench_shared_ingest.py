"""Ingesting one folder into one corpus on a Chroma server from 1 or 2 processes at once.

Starts ``chroma run`` on 127.0.0.1 in a temporary folder, writes ``--files`` small text files,
and has ``--processes`` processes ingest the whole folder into one corpus at the same moment
(each opens the corpus first, then all start together). Embedding is modelled by the hashing
embedder plus a sleep of ``--ms-per-chunk`` per chunk, like a remote or accelerator
embedder: it costs wall time, not this machine's two shared cores, so the figure shows how
the claims split the work rather than how two processes fight for a CPU.

Reported per run: wall seconds from the start signal to the last process done, chunks
embedded by each process (their sum must equal the corpus's chunks: each content once),
and the seconds a further ingestion of the unchanged folder takes (no embedding at all).

Run: ``python evals/bench_shared_ingest.py --processes 1`` and ``--processes 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from maestro_lite.corpus import Corpus
from maestro_lite.embeddings.base import InputType, Vectors
from maestro_lite.settings import Settings
from maestro_lite.testing import HashingEmbedder


class SlowEmbedder(HashingEmbedder):
    """The hashing embedder, taking ``seconds_per_text`` of wall time per document text."""

    def __init__(self, seconds_per_text: float) -> None:
        super().__init__()
        self.seconds_per_text = seconds_per_text

    async def embed(self, texts: Sequence[str], *, input_type: InputType = "document") -> Vectors:
        if input_type == "document":
            await asyncio.sleep(self.seconds_per_text * len(texts))
        return await super().embed(texts, input_type=input_type)


async def _child(url: str, home: Path, folder: Path, ms_per_chunk: float) -> None:
    embedder = SlowEmbedder(ms_per_chunk / 1000)
    settings = Settings(home=home, chroma_url=url)
    async with await Corpus.open("bench", settings=settings, embedder=embedder) as corpus:
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.perf_counter()
        report = await corpus.ingest([folder])
        seconds = time.perf_counter() - started
    summary = {"seconds": seconds, "embedded": sum(embedder.calls), "summary": report.summary()}
    print(json.dumps(summary), flush=True)


def _serve(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [chroma, "run", "--path", str(directory), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("chroma run did not answer within 60 s")


def _write_files(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        text = "\n\n".join(
            f"Note {i}, paragraph {j}, on revenue and costs. " * 12 for j in range(4)
        )
        (folder / f"note{i:04d}.txt").write_text(text, "utf-8")


def _ingest_at_once(
    url: str, root: Path, folder: Path, processes: int, ms: float
) -> list[dict[str, object]]:
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                url,
                str(root / f"home{n}"),
                str(folder),
                str(ms),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate(timeout=600)
        if child.returncode != 0:
            raise SystemExit(f"an ingesting process failed with exit status {child.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--ms-per-chunk", type=float, default=20.0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        url, home, folder, ms = args.child
        asyncio.run(_child(url, Path(home), Path(folder), float(ms)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "docs"
        _write_files(folder, args.files)
        server, url = _serve(root / "chroma")
        try:
            first = _ingest_at_once(url, root, folder, args.processes, args.ms_per_chunk)
            again = _ingest_at_once(url, root, folder, 1, args.ms_per_chunk)
        finally:
            server.terminate()
            server.wait()
    print(
        json.dumps(
            {
                "processes": args.processes,
                "files": args.files,
                "ms_per_chunk": args.ms_per_chunk,
                "wall_seconds": round(max(float(str(r["seconds"])) for r in first), 2),
                "embedded_per_process": [r["embedded"] for r in first],
                "unchanged_reingest_seconds": round(float(str(again[0]["seconds"])), 2),
                "unchanged_reingest_embedded": again[0]["embedded"],
            }
        )
    )


if __name__ == "__main__":
    main()
