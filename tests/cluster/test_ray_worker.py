"""`maestro worker --ray`: queued jobs run as Ray tasks on a real local cluster.

The model endpoint runs in this process and counts every request. A job's run is recorded
in the worker's run store by the node that ran it; when that node is killed mid-job (its
raylet and the worker process, SIGKILL), Ray runs the task again on the other node, which
resumes the job's run from its checkpoints: the calls answered before the kill are not
asked again. The provider limits hold across the nodes' processes.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from maestro_lite.events import RunResumed
from maestro_lite.scheduling import JobRecord, RunJob
from maestro_lite.testing import OpenAICompatibleServer, responder_from
from maestro_lite.testing.ray_cluster import LocalRayCluster as RayCluster
from maestro_lite.testing.ray_cluster import parent_of, ray_installed

from ..cli.conftest import Maestro
from ..orchestration.test_orchestrator import answer_notice, judge_mentions, notice_plan, routed
from ..runs.conftest import unit_of
from ..scheduling.test_worker_process import EXPECTED, TASK, scenario, wait_until


def owner_pid(owner: str | None) -> int:
    """The pid of a run's owner (``host:pid``), a Ray worker process on this machine."""
    assert owner is not None
    host, _, pid = owner.rpartition(":")
    assert host == socket.gethostname()
    return int(pid)


def test_a_job_runs_on_a_cluster_node_and_its_run_is_recorded(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    with scenario(tmp_path) as it:
        it.gate.release.set()  # nothing held
        worker = it.worker("--ray", ray_cluster.address)
        try:
            wait_until(lambda: it.store.job(it.job.job_id).status == "passed", "the job")
            (run_id,) = it.store.job(it.job.job_id).run_ids
            # Run by a Ray worker process of a cluster node (alive while `maestro worker`
            # is connected), not by `maestro worker` itself.
            pid = owner_pid(it.runs.get(run_id).summary.owner)
            assert pid != worker.process.pid
            assert parent_of(pid) in ray_cluster.raylet_pids().values()
            err = worker.stop()
        finally:
            worker.kill()
        assert f"running jobs on the Ray cluster at {ray_cluster.address}" in err
        assert f"job {it.job.job_id} passed" in err
        done = it.store.job(it.job.job_id)
        assert done.outcome is not None
        assert done.outcome.output == "Notice fell from 90 days (2023) to 60 days (2025)."
        assert done.run_ids == [run_id] and it.runs.get(run_id).status == "passed"
        assert [unit_of(b) for b in it.server.requests] == EXPECTED


def test_a_node_killed_mid_job_the_job_finishes_once_elsewhere_without_repaying_steps(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    with scenario(tmp_path) as it:
        worker = it.worker("--ray", ray_cluster.address)
        killed: int | None = None
        try:
            assert it.gate.held.wait(timeout=180), "the job never reached the held step"
            run_id = it.store.job(it.job.job_id).run_ids[0]
            first = owner_pid(it.runs.get(run_id).summary.owner)
            raylets = ray_cluster.raylet_pids()
            (killed,) = [i for i, pid in raylets.items() if pid == parent_of(first)]
            # The node dies: its raylet and the worker process running the job.
            os.kill(raylets[killed], signal.SIGKILL)
            os.kill(first, signal.SIGKILL)
            it.gate.release.set()  # the held reply goes nowhere now
            wait_until(lambda: it.store.job(it.job.job_id).status == "passed", "the job")
            # Finished by another node's worker process.
            second = owner_pid(it.runs.get(run_id).summary.owner)
            assert second != first and parent_of(second) != raylets[killed]
            err = worker.stop()
        finally:
            worker.kill()
            it.gate.release.set()
            if killed is not None:
                ray_cluster.restart(killed)
        asked = [unit_of(b) for b in it.server.requests]
        # Counted at the endpoint: the two calls answered before the kill were not asked
        # again; the one cut off was, and the rest once each.
        assert asked == [*EXPECTED[:3], *EXPECTED[2:]]
        done = it.store.job(it.job.job_id)
        assert done.run_ids == [run_id] and done.status == "passed"
        assert f"job {it.job.job_id} passed" in err
        assert err.count(f"job {it.job.job_id} started") == 1
        resumed = [e for e in it.runs.events(run_id) if isinstance(e, RunResumed)]
        assert [e.reused for e in resumed] == [["s1"]]


def test_provider_limits_hold_across_the_nodes(tmp_path: Path, ray_cluster: RayCluster) -> None:
    model = routed(notice_plan, answer_notice, judge_mentions("90 days", "60 days"))
    function: Any = model._function
    with scenario(tmp_path) as it:
        it.gate.release.set()
        # Two more jobs, on an endpoint that takes a while per call: the two nodes run them
        # at once, and with one call in flight allowed their calls take turns.
        with OpenAICompatibleServer(responder_from(function), latency=0.3) as slow:
            jobs = [
                it.store.submit(
                    JobRecord.submission(
                        RunJob(task=TASK, corpus="contracts", cache=False), name=f"n{i}"
                    )
                )
                for i in range(2)
            ]
            it.server = slow
            worker = it.worker("--ray", ray_cluster.address, "--max-calls", "1")
            try:
                for job in [it.job, *jobs]:
                    wait_until(
                        lambda job=job: it.store.job(job.job_id).status == "passed", "the jobs"
                    )
                worker.stop()
            finally:
                worker.kill()
            assert slow.max_in_flight == 1
            assert set(map(unit_of, slow.requests)) == set(EXPECTED)
        runs = [it.runs.get(it.store.job(j.job_id).run_ids[0]).summary for j in [it.job, *jobs]]
        # The limit was contended: runs on two nodes' processes were under way at once.
        owners = {owner_pid(r.owner) for r in runs}
        assert len(owners) >= 2
        spans = sorted((r.started_at, r.finished_at) for r in runs)
        assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))


@pytest.mark.skipif(not ray_installed(), reason="Ray is not installed")
@pytest.mark.parametrize("command", [["worker"], ["ingest", "."]])
def test_an_unreachable_cluster_is_one_line(maestro: Maestro, command: list[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = maestro(*command, "--ray", f"127.0.0.1:{port}", env={"MAESTRO_EMBEDDER": "hashing"})
    assert done.returncode != 0
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in done.stderr
    assert "Traceback" not in done.stderr
