"""A real local Ray cluster for the cluster tests (a head and two one-CPU nodes on
127.0.0.1), started once per session; the tests skip when Ray is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from maestro_lite.testing.ray_cluster import LocalRayCluster as RayCluster
from maestro_lite.testing.ray_cluster import ray_installed

from ..cli.conftest import maestro


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    if not ray_installed():
        pytest.skip('Ray is not installed (pip install "maestro-lite[ray]")')
    cluster = RayCluster(nodes=2)
    try:
        yield cluster
    finally:
        cluster.stop()


__all__ = ["maestro", "ray_cluster"]
