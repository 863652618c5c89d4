"""A pool becomes a worker Deployment the pool owns; the API server refuses invalid pools."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.controller.conftest import (
    JOB_NAME,
    ControllerProcess,
    Pools,
    condition,
    wait_for,
)
from tests.k8s.testbed import ControlPlane

pytestmark = [pytest.mark.k8s]

OVERRIDES: dict[str, Any] = {
    "concurrency": 8,
    "leaseSeconds": 45,
    "shutdownGraceSeconds": 20,
    "imagePullPolicy": "Always",
    "serviceAccountName": "reports-worker",
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "env": [{"name": "ASYNCENDPOINTS_BATCH_SIZE", "value": "50"}],
    "nodeSelector": {"pool": "workers"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "jobs", "effect": "NoSchedule"}
    ],
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "podLabels": {"team": "reports"},
}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.timeout(90)
async def test_a_pool_gets_a_worker_deployment_that_goes_with_it(
    kcm: ControlPlane, pools: Pools, controller: ControllerProcess
) -> None:
    pool = pools.create(minReplicas=2, **OVERRIDES)
    uid = pool["metadata"]["uid"]
    dep = await wait_for("the Deployment", pools.deployment, timeout=15)

    # owned by the pool, so that deleting the pool deletes it
    [owner] = dep["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("AsyncWorkerPool", "reports", uid)
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True

    selector = {
        "app.kubernetes.io/name": "asyncendpoints-worker",
        "app.kubernetes.io/instance": "reports",
        "app.kubernetes.io/component": "worker",
    }
    assert dep["spec"]["selector"]["matchLabels"] == selector
    assert dep["spec"]["replicas"] == 2  # minReplicas, the queue being empty
    template = dep["spec"]["template"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["labels"]["team"] == "reports"
    assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}

    pod = template["spec"]
    [container] = pod["containers"]
    assert container["image"] == "asyncendpoints/asyncendpoints:0.1.0"
    assert container["imagePullPolicy"] == "Always"
    assert container["command"] == [
        "asyncendpoints",
        "worker",
        "examples.reports:app",
        "--names",
        JOB_NAME,
    ]
    env = _env(container)
    assert env["ASYNCENDPOINTS_REDIS_URL"] == {"secretKeyRef": {"name": "redis", "key": "url"}}
    assert env["ASYNCENDPOINTS_KEY_PREFIX"] == pools.prefix
    assert env["ASYNCENDPOINTS_CONCURRENCY"] == "8"
    assert env["ASYNCENDPOINTS_LEASE_SECONDS"] == "45"
    assert env["ASYNCENDPOINTS_SHUTDOWN_GRACE_SECONDS"] == "20"
    assert env["POD_NAME"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    assert env["ASYNCENDPOINTS_BATCH_SIZE"] == "50"
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert container[probe]["httpGet"]["port"] == "health"
    assert container["ports"] == [{"name": "health", "containerPort": 8081, "protocol": "TCP"}]
    assert pod["terminationGracePeriodSeconds"] > 20  # above the worker's drain time
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"] == OVERRIDES["resources"]
    assert pod["nodeSelector"] == {"pool": "workers"}
    assert pod["tolerations"] == OVERRIDES["tolerations"]
    assert pod["serviceAccountName"] == "reports-worker"

    # the status says what happened, and an Event too
    status = await wait_for(
        "the status",
        lambda: (
            pools.get().get("status", {}).get("observedGeneration") == 1 and pools.get()["status"]
        ),
        timeout=10,
    )
    assert condition(pools.get(), "StoreReachable")["status"] == "True"
    assert status["desiredReplicas"] == 2 and status["queued"] == 0
    assert await wait_for(
        "the DeploymentCreated event", lambda: pools.events("DeploymentCreated"), timeout=10
    )

    # the pool changes: the template follows, the replicas stay where the scaler put them
    pools.change_spec(image="asyncendpoints/asyncendpoints:0.2.0", concurrency=4)
    dep = await wait_for(
        "the new image",
        lambda: (
            (d := pools.deployment())
            and d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("0.2.0")
            and d
        ),
        timeout=10,
    )
    assert (
        _env(dep["spec"]["template"]["spec"]["containers"][0])["ASYNCENDPOINTS_CONCURRENCY"] == "4"
    )
    assert dep["spec"]["replicas"] == 2
    await wait_for(
        "observedGeneration 2",
        lambda: pools.get()["status"].get("observedGeneration") == 2,
        timeout=10,
    )

    # paused: the Deployment is left alone
    pools.change_spec(paused=True, image="asyncendpoints/asyncendpoints:0.3.0", minReplicas=3)
    await wait_for(
        "observedGeneration 3",
        lambda: pools.get()["status"].get("observedGeneration") == 3,
        timeout=10,
    )
    scaling = condition(pools.get(), "Scaling")
    assert (scaling["status"], scaling["reason"]) == ("False", "Paused")
    dep = pools.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith("0.2.0")
    assert dep["spec"]["replicas"] == 2

    # deleted: the Deployment goes (garbage collection by kube-controller-manager)
    pools.delete()
    await wait_for("the pool to go", lambda: not pools.get(), timeout=15)
    await wait_for("the Deployment to go", lambda: not pools.deployment(), timeout=30)


@pytest.mark.timeout(60)
async def test_a_restarted_controller_adopts_what_exists(
    pools: Pools, start_controller: Any
) -> None:
    """Picks up existing pools and Deployments without re-creating anything."""
    first = start_controller()
    pools.create(minReplicas=1)
    dep = await wait_for("the Deployment", pools.deployment, timeout=30)
    await wait_for("a status", lambda: pools.get().get("status", {}).get("conditions"), timeout=10)
    assert first.stop() == 0
    second = start_controller()
    await wait_for(
        "the second controller to reconcile",
        lambda: second.logged("reconciling the pool"),
        timeout=30,
    )
    await asyncio.sleep(2.5)  # two ticks of the 1 s polling interval
    again = pools.deployment()
    assert again["metadata"]["uid"] == dep["metadata"]["uid"]
    assert again["metadata"]["generation"] == dep["metadata"]["generation"]
    assert not second.logged("created Deployment")
    assert len(pools.events("DeploymentCreated")) == 1


INVALID = [
    ({"minReplicas": 6, "maxReplicas": 2}, "minReplicas must be less than or equal to maxReplicas"),
    ({"targetJobsPerReplica": -1}, "spec.targetJobsPerReplica"),
    ({"app": "examples/reports.py"}, "app must be a module:attr reference"),
    ({"app": "examples.reports"}, "app must be a module:attr reference"),
    ({"pollingIntervalSeconds": 0}, "spec.pollingIntervalSeconds"),
    ({"jobNames": ["no spaces allowed"]}, "spec.jobNames"),
    ({"env": [{"name": "POD_NAME", "value": "x"}]}, "env must not set the variables"),
    ({"podLabels": {"app.kubernetes.io/instance": "x"}}, "podLabels must not set"),
    ({"redis": {"secretRef": {}}}, "spec.redis.secretRef.name: Required value"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("change", "message"), INVALID, ids=[m for _, m in INVALID])
def test_an_invalid_pool_is_refused_with_a_readable_message(
    pools: Pools, change: dict[str, Any], message: str
) -> None:
    status, body = pools.try_create("bad", pools.spec(**change))
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert message in body["message"], body["message"]
    assert not pools.get("bad")


@pytest.mark.timeout(30)
def test_defaults_are_filled_in_by_the_api_server(pools: Pools) -> None:
    body = {
        "image": "asyncendpoints/asyncendpoints:0.1.0",
        "app": "examples.reports:app",
        "redis": {"secretRef": {"name": "redis"}},
    }
    status, pool = pools.try_create("minimal", body)
    assert status == 201, pool
    spec = pool["spec"]
    assert spec["redis"] == {"secretRef": {"name": "redis", "key": "url"}, "keyPrefix": "ae"}
    assert (spec["minReplicas"], spec["maxReplicas"], spec["targetJobsPerReplica"]) == (1, 10, 10)
    assert (spec["pollingIntervalSeconds"], spec["scaleDownStabilizationSeconds"]) == (5, 60)
    assert (spec["leaseSeconds"], spec["shutdownGraceSeconds"], spec["paused"]) == (30, 25, False)
