"""Running on a Ray cluster (extra ``[ray]``): a worker's jobs as Ray tasks
(:class:`RayJobExecutor`, ``maestro worker --ray``), and batch work fanned out over the
nodes with back-pressure (:class:`RayEmbedder` for ingestion, :func:`on_node` for
extraction). Only this package imports Ray.
"""

from __future__ import annotations

from ._ray import bounded, connect, disconnect, on_node, ray_available, run_on_node, submit
from .embed import RayEmbedder
from .jobs import RayJobExecutor, execute_job
from .node import Node, open_run_store, open_schedule_store

__all__ = [
    "Node",
    "RayEmbedder",
    "RayJobExecutor",
    "bounded",
    "connect",
    "disconnect",
    "execute_job",
    "on_node",
    "open_run_store",
    "open_schedule_store",
    "ray_available",
    "run_on_node",
    "submit",
]
