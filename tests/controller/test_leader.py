"""Several controllers: one acts, the others wait on the Lease and take over when it dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from asyncendpoints.store.redis import RedisJobStore
from tests.controller.conftest import ControllerProcess, Pools, add_jobs, wait_for

pytestmark = [pytest.mark.k8s]

LEASE_DURATION = 4.0  # --lease-duration of the test controllers (see conftest)
RETRY_PERIOD = 0.5


def _lease(pools: Pools) -> dict[str, object]:
    path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{pools.namespace}"
        "/leases/asyncendpoints-controller"
    )
    status, body = pools.plane.request("GET", path)
    return dict(body["spec"]) if status == 200 else {}


@pytest.mark.timeout(90)
async def test_only_the_leader_acts_and_a_standby_takes_over(
    pools: Pools,
    start_controller: Callable[..., ControllerProcess],
    job_store: RedisJobStore,
) -> None:
    first = start_controller(identity="ctl-a")
    await wait_for("ctl-a to lead", lambda: first.logged("starting the operator"), timeout=30)
    second = start_controller(identity="ctl-b")
    await wait_for("ctl-b to stand by", lambda: second.logged("standby: the lease"), timeout=30)
    assert _lease(pools)["holderIdentity"] == "ctl-a"

    pools.create(minReplicas=0, maxReplicas=5, targetJobsPerReplica=10)
    await wait_for("the Deployment", pools.deployment, timeout=15)
    await add_jobs(job_store, 20)
    await wait_for("2 replicas", lambda: pools.replicas() == 2, timeout=10)
    await asyncio.sleep(1)
    assert first.logged("scaled 0 -> 2")
    assert not second.logged("starting the operator")
    assert not second.logged("reconciling the pool")
    assert not second.logged("scaled")

    first.kill()  # SIGKILL: no chance to hand the Lease back
    killed = time.monotonic()
    await wait_for(
        "ctl-b to take over",
        lambda: second.logged("starting the operator"),
        timeout=LEASE_DURATION + 5,
    )
    takeover = time.monotonic() - killed
    print(
        f"takeover after SIGKILL of the leader: {takeover:.1f} s "
        f"(lease {LEASE_DURATION:.0f} s, retry {RETRY_PERIOD} s)"
    )
    assert takeover <= LEASE_DURATION + 2 * RETRY_PERIOD + 1.0
    assert _lease(pools)["holderIdentity"] == "ctl-b"
    assert _lease(pools)["leaseTransitions"] == 1

    # the new leader acts: it scales for a new backlog
    await add_jobs(job_store, 20)
    await wait_for("4 replicas", lambda: pools.replicas() == 4, timeout=10)
    await wait_for("ctl-b's log line", lambda: second.logged("scaled 2 -> 4"), timeout=2)

    # a clean stop hands the Lease back: a third controller takes over at once
    third = start_controller(identity="ctl-c")
    await wait_for("ctl-c to stand by", lambda: third.logged("standby: the lease"), timeout=30)
    assert second.stop() == 0
    stopped = time.monotonic()
    await wait_for("ctl-c to lead", lambda: third.logged("starting the operator"), timeout=10)
    handover = time.monotonic() - stopped
    print(f"handover after SIGTERM of the leader: {handover:.1f} s")
    assert handover < LEASE_DURATION  # released, not expired


@pytest.mark.timeout(60)
async def test_a_leader_that_loses_its_lease_stops(
    pools: Pools, start_controller: Callable[..., ControllerProcess]
) -> None:
    """Someone else holds the Lease now (a partition healed, say): the old leader exits 1."""
    leader = start_controller(identity="ctl-a")
    await wait_for("ctl-a to lead", lambda: leader.logged("starting the operator"), timeout=30)
    path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{pools.namespace}"
        "/leases/asyncendpoints-controller"
    )
    for _ in range(20):  # a PUT that may race with ctl-a's renewals
        lease = pools.plane.request("GET", path)[1]
        lease["spec"]["holderIdentity"] = "intruder"
        status, _ = pools.plane.request("PUT", path, lease)
        if status == 200:
            break
    await wait_for("ctl-a to exit", lambda: not leader.alive(), timeout=10)
    assert leader.process.returncode == 1
    assert leader.logged("lost the lease to intruder")
    assert _lease(pools)["holderIdentity"] == "intruder"  # it did not release someone else's
