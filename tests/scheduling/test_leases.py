"""Job leases, on SQLite and PostgreSQL (the ``db`` fixture): a claimed job is one worker's
while it renews its lease; once the lease runs out (the worker died), another worker takes
the job, and the one that lost it can no longer stop or renew it."""

from __future__ import annotations

import threading
import time

from maestro_lite.scheduling import JobOutcome, JobRecord, RunJob

from ..services.stores import schedule_store


def _wait_for_claim(store: object) -> JobRecord:
    claim = store.claim_next
    deadline = time.monotonic() + 60
    while (job := claim()) is None:
        assert time.monotonic() < deadline, "the expired lease was never released"
        time.sleep(0.01)
    return job


def test_a_job_is_one_workers_until_its_lease_expires(db: str) -> None:
    a = schedule_store(db, worker_id="machine-a:1", lease_seconds=60)
    b = schedule_store(db, worker_id="machine-b:2", lease_seconds=60)
    job = a.submit(JobRecord.submission(RunJob(task="t"), name="n"))
    claimed = a.claim_next()
    assert claimed is not None and claimed.owner == "machine-a:1"
    assert b.claim_next() is None  # leased to a
    assert a.renew_leases([job.job_id]) == []
    assert b.renew_leases([job.job_id]) == [job.job_id]  # not b's to renew

    # a stops renewing (it died): its last renewal held the job for no time at all.
    schedule_store(db, worker_id="machine-a:1", lease_seconds=0).renew_leases([job.job_id])
    taken = _wait_for_claim(b)
    assert (taken.job_id, taken.owner, taken.status) == (job.job_id, "machine-b:2", "running")
    assert a.renew_leases([job.job_id]) == [job.job_id]  # a learns it lost the job
    a.stop_job(job.job_id)  # and cannot stop it any more
    assert b.job(job.job_id).status == "running"
    b.finish_job(job.job_id, JobOutcome(status="passed"))
    assert a.claim_next() is None and b.job(job.job_id).status == "passed"


def test_recover_interrupts_the_jobs_whose_lease_expired(db: str) -> None:
    gone = schedule_store(db, worker_id="machine-a:1", lease_seconds=0)
    alive = schedule_store(db, worker_id="machine-c:3", lease_seconds=60)
    held = alive.submit(JobRecord.submission(RunJob(task="one"), name="n"))
    claimed = alive.claim_next()
    assert claimed is not None and claimed.job_id == held.job_id
    expired = gone.submit(JobRecord.submission(RunJob(task="two"), name="n"))
    assert gone.claim_next() is not None
    restarted = schedule_store(db, worker_id="machine-b:2", lease_seconds=60)
    assert restarted.recover() == [expired.job_id]
    assert restarted.job(expired.job_id).status == "interrupted"
    assert restarted.job(held.job_id).status == "running"


def test_workers_claiming_at_once_take_each_job_once(db: str) -> None:
    """Eight claimers, each with its own connection, drain 80 jobs: no job twice."""
    submitter = schedule_store(db)
    jobs = [JobRecord.submission(RunJob(task=f"t{i}"), name="n") for i in range(80)]
    for job in jobs:
        submitter.submit(job)
    claimers = [schedule_store(db, worker_id=f"w{i}:{i}", lease_seconds=60) for i in range(8)]
    taken: list[list[str]] = [[] for _ in claimers]

    def drain(i: int) -> None:
        while (job := claimers[i].claim_next()) is not None:
            taken[i].append(job.job_id)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(claimers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    every = [job_id for ids in taken for job_id in ids]
    assert sorted(every) == sorted(j.job_id for j in jobs)  # each exactly once
