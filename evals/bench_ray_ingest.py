"""Ingestion of the 20 SEC 10-Q filings with the embedding on a local Ray cluster of 1 and
of 2 worker nodes (``maestro ingest --ray``): wall time, chunks/s, scaling efficiency.

For each cluster size a fresh cluster (a head that runs no tasks and N one-CPU nodes, all
on this machine, ``maestro_lite.testing.ray_cluster``) and a fresh corpus: the filings are
read and parsed in this process, their chunks embedded by Ray tasks on the nodes
(:class:`~maestro_lite.cluster.RayEmbedder`, the configured embedder, MiniLM by default),
and written here. Every node loads the model before the clock starts. Efficiency is the
speed-up over one node divided by the number of nodes; on a machine with fewer free cores
than nodes (and this process parsing on one of them) the ideal cannot be reached.

Run: ``python -m evals.bench_ray_ingest --json ray.json`` (``--nodes 1 2``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from maestro_lite.cluster import RayEmbedder, disconnect
from maestro_lite.corpus import Corpus
from maestro_lite.settings import Settings
from maestro_lite.testing.ray_cluster import LocalRayCluster

from .common import machine, today
from .datasets import sec10q_pdfs

__all__ = ["ClusterRun", "main", "run"]


class ClusterRun(BaseModel):
    """One ingestion on a cluster of ``nodes`` worker nodes."""

    date: str
    machine: str
    embedder: str
    nodes: int
    files: int
    failed: int
    chunks: int
    wall_seconds: float
    chunks_per_second: float
    load_average: tuple[float, float, float]


async def _ingest(settings: Settings, address: str, files: list[Path]) -> tuple[int, int, float]:
    embedder = RayEmbedder(address, settings=settings)
    await embedder.embed(["warm up"] * embedder.slice_size * embedder.max_in_flight)
    async with await Corpus.open("sec10q", settings=settings, embedder=embedder) as corpus:
        started = time.perf_counter()
        report = await corpus.ingest(files)
        wall = time.perf_counter() - started
    return report.chunks, len(report.failed), wall


def run(nodes: int, settings: Settings | None = None) -> ClusterRun:
    """Ingest the filings on a fresh cluster of ``nodes`` nodes."""
    base = settings or Settings.from_env()
    files = sec10q_pdfs(base.data_dir)
    cluster = LocalRayCluster(nodes=nodes)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as home:
            settings = base.model_copy(update={"home": Path(home)})
            chunks, failed, wall = asyncio.run(_ingest(settings, cluster.address, files))
            disconnect()
    finally:
        cluster.stop()
    return ClusterRun(
        date=today(),
        machine=machine(),
        embedder=base.embedder,
        nodes=nodes,
        files=len(files),
        failed=failed,
        chunks=chunks,
        wall_seconds=round(wall, 1),
        chunks_per_second=round(chunks / wall, 2),
        load_average=os.getloadavg(),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    runs = [run(n) for n in args.nodes]
    one = next((r for r in runs if r.nodes == 1), None)
    for r in runs:
        line = f"{r.nodes} node(s): {r.chunks} chunks in {r.wall_seconds:.1f}s, "
        line += f"{r.chunks_per_second:.1f} chunks/s, failed {r.failed}, load {r.load_average}"
        if one is not None and r.nodes > 1:
            speedup = one.wall_seconds / r.wall_seconds
            line += f"; speed-up {speedup:.2f}x, efficiency {speedup / r.nodes:.2f}"
        print(line)
    if args.json:
        args.json.write_text("[" + ",".join(r.model_dump_json() for r in runs) + "]")


if __name__ == "__main__":
    main()
