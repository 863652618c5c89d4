"""Autoscaling by queue depth: up within one polling interval, down after the stabilization
window, to zero and back, and idle workers removed before busy ones."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from asyncendpoints.job import JobStatus
from asyncendpoints.store.redis import RedisJobStore
from tests.controller.conftest import (
    JOB_NAME,
    SELECTOR,
    ControllerProcess,
    Pools,
    add_jobs,
    condition,
    wait_for,
)
from tests.controller.worker_app import release_key
from tests.k8s.testbed import ControlPlane
from tests.support.kubelet import Kubelet

pytestmark = [pytest.mark.k8s]

POLL = 1.0
WINDOW = 4.0
SLACK = 1.5  # the API server, kopf and Redis round trips on a busy 2-core test machine


async def drain(store: RedisJobStore, count: int) -> None:
    """Claim and complete ``count`` jobs, as workers would."""
    done = 0
    while done < count:
        claims = await store.claim("drainer", [JOB_NAME], count=count - done, lease_seconds=60)
        assert claims, f"only {done} of {count} jobs were queued"
        assert all(await store.complete_many([(c.lease, b"{}") for c in claims]))
        done += len(claims)


@pytest.mark.timeout(120)
async def test_scales_with_the_backlog_within_a_polling_interval(
    pools: Pools, controller: ControllerProcess, job_store: RedisJobStore
) -> None:
    pools.create(
        minReplicas=0,
        maxReplicas=5,
        targetJobsPerReplica=10,
        pollingIntervalSeconds=int(POLL),
        scaleDownStabilizationSeconds=int(WINDOW),
    )
    await wait_for("the Deployment at 0 replicas", lambda: pools.replicas() == 0, timeout=15)
    ready = await wait_for(
        "Ready (scaled to zero)", lambda: condition(pools.get(), "Ready"), timeout=10
    )
    assert (ready["status"], ready["reason"]) == ("True", "ScaledToZero")

    # a backlog of 100 jobs at 10 per replica, max 5: 5 replicas within one polling interval
    await add_jobs(job_store, 100)
    started = time.monotonic()
    await wait_for("5 replicas", lambda: pools.replicas() == 5, timeout=POLL + SLACK)
    scale_up = time.monotonic() - started
    print(f"scale-up latency after a backlog of 100 jobs: {scale_up * 1000:.0f} ms")
    assert scale_up <= POLL + SLACK
    [event] = await wait_for("the ScaledUp event", lambda: pools.events("ScaledUp"), timeout=5)
    assert event["message"] == "scaled 0 -> 5: 100 queued, 0 in progress"
    pool = await wait_for(
        "the status", lambda: (p := pools.get())["status"].get("queued") == 100 and p, timeout=5
    )
    status = pool["status"]
    assert (status["desiredReplicas"], status["currentReplicas"]) == (5, 5)
    assert status["inProgress"] == 0 and status["lastScaleTime"]
    assert condition(pool, "Scaling")["reason"] in ("ScaledUp", "AtMaxReplicas")

    # drained: the replicas stay for the stabilization window, then go (to zero: min is 0)
    await drain(job_store, 100)
    drained = time.monotonic()
    while time.monotonic() - drained < WINDOW - POLL - 0.5:
        assert pools.replicas() == 5, "scaled down before the stabilization window passed"
        await asyncio.sleep(0.2)
    await wait_for("0 replicas", lambda: pools.replicas() == 0, timeout=WINDOW + POLL + SLACK)
    scale_down = time.monotonic() - drained
    print(f"scale-down after the drain: {scale_down:.1f} s (window {WINDOW:.0f} s)")
    assert scale_down >= WINDOW - POLL
    assert [e["message"] for e in pools.events("ScaledDown")] == [
        "scaled 5 -> 0: 0 queued, 0 in progress"
    ]
    assert len(pools.events("ScaledUp")) == 1  # no flapping on the way

    # the next job scales it back up
    await add_jobs(job_store, 1)
    started = time.monotonic()
    await wait_for("1 replica", lambda: pools.replicas() == 1, timeout=POLL + SLACK)
    print(f"scale-from-zero latency: {(time.monotonic() - started) * 1000:.0f} ms")


@pytest.mark.timeout(60)
async def test_patches_replicas_only_when_the_decision_changes(
    pools: Pools, controller: ControllerProcess, job_store: RedisJobStore
) -> None:
    pools.create(
        minReplicas=1, maxReplicas=5, targetJobsPerReplica=10, pollingIntervalSeconds=int(POLL)
    )
    dep = await wait_for("the Deployment", pools.deployment, timeout=15)
    await add_jobs(job_store, 25)  # 3 replicas
    await wait_for("3 replicas", lambda: pools.replicas() == 3, timeout=POLL + SLACK)
    generation = pools.deployment()["metadata"]["generation"]
    assert generation == dep["metadata"]["generation"] + 1  # one patch for one decision
    await asyncio.sleep(3 * POLL)  # three more ticks with the same backlog
    again = pools.deployment()
    assert again["metadata"]["generation"] == generation
    assert len(pools.events("ScaledUp")) == 1


def _busy_workers(jobs: list[Any]) -> set[str]:
    return {j.worker_id for j in jobs if j.status == JobStatus.IN_PROGRESS}


@pytest.mark.timeout(150)
async def test_scale_down_removes_idle_workers_first(
    kcm: ControlPlane,
    pools: Pools,
    controller: ControllerProcess,
    job_store: RedisJobStore,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """4 real workers hold a job each; 2 jobs finish; at 2 replicas the 2 busy pods are left."""
    pools.create(
        minReplicas=0,
        maxReplicas=4,
        targetJobsPerReplica=1,
        pollingIntervalSeconds=int(POLL),
        scaleDownStabilizationSeconds=2,
    )
    # real `asyncendpoints worker` processes, one job at a time, reporting in-flight counts
    script = Path(sys.executable).with_name("asyncendpoints")
    command = [str(script), "worker", "tests.controller.worker_app:app"]
    env = {
        "ASYNCENDPOINTS_REDIS_URL": redis_url,
        "ASYNCENDPOINTS_KEY_PREFIX": pools.prefix,
        "ASYNCENDPOINTS_CONCURRENCY": "1",
        "ASYNCENDPOINTS_HEARTBEAT_SECONDS": "0.3",
        "ASYNCENDPOINTS_SHUTDOWN_GRACE_SECONDS": "1",
        "ASYNCENDPOINTS_WORKER_HEALTH_PORT": "0",
        "ASYNCENDPOINTS_LOG_FORMAT": "json",
    }
    with Kubelet(
        kcm.kubeconfig,
        pools.namespace,
        f"{SELECTOR},app.kubernetes.io/instance=reports",
        command,
        env=env,
        log_dir=tmp_path,
        grace=5,
    ) as kubelet:
        ids = await add_jobs(job_store, 4)
        await wait_for(
            "4 running worker processes", lambda: len(kubelet.running()) == 4, timeout=60
        )

        async def all_claimed() -> list[Any]:
            jobs = [await job_store.get(i) for i in ids]
            return jobs if len(_busy_workers(jobs)) == 4 else []

        jobs = await wait_for("each worker to hold a job", all_claimed, timeout=30)
        pods = {p["metadata"]["name"] for p in pools.pods()}
        assert _busy_workers(jobs) == pods

        # two jobs finish: their workers become idle; the backlog asks for 2 replicas
        finished = jobs[:2]
        async with aioredis.Redis.from_url(redis_url) as redis:
            for job in finished:
                await redis.set(release_key(pools.prefix, job.id), b"1")

        async def released_completed() -> bool:
            got = [await job_store.get(j.id) for j in finished]
            return all(j.status == JobStatus.COMPLETED for j in got)

        await wait_for("the released jobs to complete", released_completed, timeout=10)
        busy = {j.worker_id for j in jobs[2:]}
        idle = pods - busy

        async def workers_report_it() -> bool:
            seen = {w.worker_id: w.in_flight for w in await job_store.workers()}
            return all(seen.get(p) == 0 for p in idle) and all(seen.get(p) == 1 for p in busy)

        await wait_for("the workers to report their in-flight jobs", workers_report_it, timeout=10)
        await wait_for("2 replicas", lambda: pools.replicas() == 2, timeout=30)
        await wait_for("2 pods left", lambda: len(pools.pods()) == 2, timeout=30)
        left = {p["metadata"]["name"] for p in pools.pods()}
        assert left == busy, f"the ReplicaSet removed busy pods: left {left}, busy {busy}"
        costs = {
            p["metadata"]["name"]: p["metadata"]["annotations"].get(
                "controller.kubernetes.io/pod-deletion-cost"
            )
            for p in pools.pods()
        }
        assert costs == {name: "1" for name in busy}
        await wait_for(
            "the idle processes to stop", lambda: set(kubelet.running()) == busy, timeout=15
        )
        # the busy workers' jobs were never touched
        for job in jobs[2:]:
            again = await job_store.get(job.id)
            assert (again.status, again.worker_id, again.token) == (
                JobStatus.IN_PROGRESS,
                job.worker_id,
                job.token,
            )
