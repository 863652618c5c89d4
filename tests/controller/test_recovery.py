"""Recovery: a lost worker's jobs go back to the queue at once; a Redis outage is survived."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from asyncendpoints.job import JobStatus, WorkerInfo
from asyncendpoints.store.redis import RedisJobStore
from tests.controller.conftest import (
    JOB_NAME,
    ControllerProcess,
    Pools,
    add_jobs,
    condition,
    wait_for,
)
from tests.k8s.testbed import ControlPlane
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.k8s]


async def _statuses(store: RedisJobStore, ids: list[str]) -> set[JobStatus]:
    return {(await store.get(i)).status for i in ids}


@pytest.mark.timeout(90)
async def test_a_deleted_worker_pod_has_its_jobs_queued_again_at_once(
    kcm: ControlPlane, pools: Pools, controller: ControllerProcess, job_store: RedisJobStore
) -> None:
    pools.create(minReplicas=2, maxReplicas=2, leaseSeconds=300)
    pods = await wait_for("2 pods", lambda: len(p := pools.pods()) == 2 and p, timeout=30)
    doomed, survivor = (p["metadata"]["name"] for p in pods)
    await add_jobs(job_store, 5)
    for worker in (doomed, survivor):  # live workers (else the tick would call them dead)
        await job_store.register_worker(WorkerInfo(worker, (JOB_NAME,), 4), ttl=300)
    lost = await job_store.claim(doomed, [JOB_NAME], count=3, lease_seconds=300)
    kept = await job_store.claim(survivor, [JOB_NAME], count=2, lease_seconds=300)
    lost_ids = [c.job.id for c in lost]
    assert len(lost_ids) == 3 and len(kept) == 2

    status, body = pools.plane.request(
        "DELETE", f"/api/v1/namespaces/{pools.namespace}/pods/{doomed}"
    )
    assert status == 200, body
    started = time.monotonic()
    await wait_for(
        "the lost jobs to be Queued",
        lambda: _queued(job_store, lost_ids),
        timeout=2.0,
        interval=0.01,
    )
    latency = time.monotonic() - started
    print(f"recovery latency after the pod was deleted: {latency * 1000:.0f} ms")
    for job_id in lost_ids:
        job = await job_store.get(job_id)
        assert job.retry_count == 1  # the lost attempt counts
    for claim in kept:  # the other worker's jobs are left alone
        job = await job_store.get(claim.job.id)
        assert (job.status, job.worker_id) == (JobStatus.IN_PROGRESS, survivor)

    [event] = await wait_for(
        "the JobsRecovered event", lambda: pools.events("JobsRecovered"), timeout=5
    )
    assert event["message"] == f"recovered 3 jobs of worker {doomed} (its pod was deleted)"
    recovery = await wait_for(
        "status.lastRecovery", lambda: pools.get()["status"].get("lastRecovery"), timeout=5
    )
    assert recovery["jobs"] == 3 and recovery["time"]

    # a Failed pod (its container crashed for good) is recovered the same way
    path = f"/api/v1/namespaces/{pools.namespace}/pods/{survivor}/status"
    pod = pools.plane.request("GET", f"/api/v1/namespaces/{pools.namespace}/pods/{survivor}")[1]
    pod["status"]["phase"] = "Failed"
    status, body = pools.plane.request("PUT", path, pod)
    assert status == 200, body
    kept_ids = [c.job.id for c in kept]
    await wait_for(
        "the failed pod's jobs to be Queued",
        lambda: _queued(job_store, kept_ids),
        timeout=2.0,
        interval=0.01,
    )
    await wait_for(
        "a second JobsRecovered event", lambda: len(pools.events("JobsRecovered")) == 2, timeout=5
    )
    messages = sorted(e["message"] for e in pools.events("JobsRecovered"))
    assert f"recovered 2 jobs of worker {survivor} (its pod failed)" in messages


async def _queued(store: RedisJobStore, ids: list[str]) -> bool:
    return await _statuses(store, ids) == {JobStatus.QUEUED}


@pytest.mark.timeout(60)
async def test_expired_leases_are_recovered_by_the_timer(
    pools: Pools, controller: ControllerProcess, job_store: RedisJobStore
) -> None:
    """A live worker that stopped renewing its leases: the tick recovers its jobs."""
    pools.create(minReplicas=0, maxReplicas=2)
    await wait_for("the Deployment", pools.deployment, timeout=15)
    await add_jobs(job_store, 2)
    await job_store.register_worker(WorkerInfo("a-stuck-worker", (JOB_NAME,), 4), ttl=300)
    claims = await job_store.claim("a-stuck-worker", [JOB_NAME], count=2, lease_seconds=1)
    ids = [c.job.id for c in claims]
    await wait_for("the jobs to be Queued again", lambda: _queued(job_store, ids), timeout=5)
    [event] = await wait_for(
        "the JobsRecovered event", lambda: pools.events("JobsRecovered"), timeout=5
    )
    assert event["message"] == "recovered 2 jobs whose lease expired"


@pytest.mark.timeout(60)
async def test_a_dead_workers_jobs_are_recovered_before_their_leases_expire(
    pools: Pools, controller: ControllerProcess, job_store: RedisJobStore
) -> None:
    """A worker whose registration ran out (its pod went while no controller watched)."""
    pools.create(minReplicas=0, maxReplicas=2)
    await wait_for("the Deployment", pools.deployment, timeout=15)
    await add_jobs(job_store, 2)
    await job_store.register_worker(WorkerInfo("a-worker-long-gone", (JOB_NAME,), 4), ttl=1)
    claims = await job_store.claim("a-worker-long-gone", [JOB_NAME], count=2, lease_seconds=300)
    ids = [c.job.id for c in claims]
    await wait_for("the jobs to be Queued again", lambda: _queued(job_store, ids), timeout=5)
    [event] = await wait_for(
        "the JobsRecovered event", lambda: pools.events("JobsRecovered"), timeout=5
    )
    assert (
        event["message"] == "recovered 2 jobs of worker a-worker-long-gone (it stopped reporting)"
    )
    recovery = await wait_for(
        "status.lastRecovery", lambda: pools.get()["status"].get("lastRecovery"), timeout=5
    )
    assert recovery["jobs"] == 2


@pytest.mark.timeout(90)
async def test_redis_down_keeps_the_replicas_and_recovers(
    pools: Pools,
    controller: ControllerProcess,
    job_store: RedisJobStore,
    redis_server: RedisServer,
) -> None:
    pools.create(
        minReplicas=0, maxReplicas=5, targetJobsPerReplica=10, scaleDownStabilizationSeconds=1
    )
    await add_jobs(job_store, 30)
    await wait_for("3 replicas", lambda: pools.replicas() == 3, timeout=10)
    await wait_for(
        "StoreReachable=True",
        lambda: condition(pools.get(), "StoreReachable").get("status") == "True",
        timeout=5,
    )

    redis_server.stop()
    try:
        down = await wait_for(
            "StoreReachable=False",
            lambda: (c := condition(pools.get(), "StoreReachable")).get("status") == "False" and c,
            timeout=10,
        )
        assert down["reason"] == "StoreUnavailable"
        pool = pools.get()
        scaling = condition(pool, "Scaling")
        assert (scaling["status"], scaling["reason"]) == ("False", "StoreUnavailable")
        assert scaling["message"] == "keeping 3 replicas until the store answers"
        assert condition(pool, "Ready")["status"] == "False"
        for _ in range(10):  # several ticks (and more than the stabilization window): no change
            assert pools.replicas() == 3
            await asyncio.sleep(0.3)
        assert await wait_for(
            "the StoreUnavailable event", lambda: pools.events("StoreUnavailable"), timeout=5
        )
        assert controller.alive()
    finally:
        redis_server.start()  # the same port: the controller's store reconnects

    up = await wait_for(
        "StoreReachable=True",
        lambda: (c := condition(pools.get(), "StoreReachable")).get("status") == "True" and c,
        timeout=15,
    )
    assert up["reason"] == "Connected"
    # the restarted Redis kept nothing (no persistence): the pool follows the new truth
    await wait_for("0 replicas (empty queues)", lambda: pools.replicas() == 0, timeout=10)
    await add_jobs(job_store, 12)
    await wait_for("2 replicas", lambda: pools.replicas() == 2, timeout=10)
    events: list[Any] = pools.events("StoreReachable")
    assert events and events[0]["message"] == "the job store answers again"
