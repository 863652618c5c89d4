"""Fixtures for the controller's tests: the CRD, a least-privilege identity, the controller
as a real subprocess, pools in a namespace of their own, and a job store with the pool's prefix.

The controller runs as ``python -m controller`` with a kubeconfig whose token belongs to a
ServiceAccount bound to exactly the RBAC rules below (the ones the report and the Helm chart
list): a missing permission fails these tests.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncendpoints.job import NewJob
from asyncendpoints.store.redis import RedisJobStore
from tests.k8s import conftest as _testbed
from tests.k8s.testbed import ControlPlane, write_kubeconfig

# The test bed's fixtures and its build-once hook (a conftest's fixtures are seen only below
# its folder, so they are re-exported here as tests/charts does).
k8s_binaries = _testbed.k8s_binaries
k8s_cluster = _testbed.k8s_cluster
k8s_controller_manager = _testbed.k8s_controller_manager
k8s_namespace = _testbed.k8s_namespace
pytest_collection_modifyitems = _testbed.pytest_collection_modifyitems

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "manifests" / "crds" / "asyncworkerpools.asyncendpoints.io.yaml"
GROUP, VERSION, PLURAL = "asyncendpoints.io", "v1alpha1", "asyncworkerpools"
SYSTEM_NAMESPACE = "asyncendpoints-system"
SERVICE_ACCOUNT = "asyncendpoints-controller"
JOB_NAME = "generate-report"
SELECTOR = "app.kubernetes.io/name=asyncendpoints-worker,app.kubernetes.io/component=worker"

# The controller's RBAC (see docs/controller.md): the workload rules cluster-wide here (a
# ClusterRole; the chart uses a Role when the controller watches one namespace) ...
WORKLOAD_RULES: list[dict[str, Any]] = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "create", "update", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
]
# ... and the leader-election Lease, in the namespace that holds it (a Role).
LEASE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]},
]


# --- small helpers ---------------------------------------------------------------------------
def api(plane: ControlPlane, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return plane.request(method, path, body)


def ok(result: tuple[int, Any], *expected: int) -> Any:
    status, body = result
    assert status in (expected or (200, 201)), f"{status}: {body}"
    return body


def pool_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{path}/{name}" if name else path


def deployment_path(namespace: str, pool: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{pool}-worker"


async def wait_for(
    what: str,
    check: Callable[[], Any | Awaitable[Any]],
    timeout: float,
    interval: float = 0.05,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {timeout:.1f} s waiting for {what} (last: {last!r})")


def condition(pool: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (pool.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


# --- the CRD and the controller's identity ------------------------------------------------
def _apply_crd(plane: ControlPlane) -> None:
    crd = yaml.safe_load(CRD_FILE.read_text())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    status, existing = plane.request("GET", f"{path}/{crd['metadata']['name']}")
    if status == 200:
        crd["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        ok(plane.request("PUT", f"{path}/{crd['metadata']['name']}", crd))
    else:
        ok(plane.request("POST", path, crd))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, got = plane.request("GET", f"{path}/{crd['metadata']['name']}")
        conds = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
        served = plane.request("GET", f"/apis/{GROUP}/{VERSION}")[0] == 200
        if conds.get("Established") == "True" and served:
            return
        time.sleep(0.2)
    pytest.fail("the AsyncWorkerPool CRD did not become Established", pytrace=False)


@pytest.fixture(scope="session")
def crd(k8s_cluster: ControlPlane) -> ControlPlane:
    """The session's control plane with the AsyncWorkerPool CRD installed (from manifests/)."""
    _apply_crd(k8s_cluster)
    return k8s_cluster


@pytest.fixture(scope="session")
def kcm(crd: ControlPlane, k8s_controller_manager: ControlPlane) -> ControlPlane:
    """kube-controller-manager, started after the CRD exists: its garbage collector knows
    pools from the start (a CRD added later is discovered only at its next resync)."""
    return k8s_controller_manager


@pytest.fixture(scope="session")
def controller_kubeconfig(crd: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for a ServiceAccount that holds only the controller's RBAC rules."""
    plane = crd
    ns = SYSTEM_NAMESPACE
    meta = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    ok(plane.request("POST", "/api/v1/namespaces", meta), 201, 409)
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT}}
    ok(plane.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa), 201, 409)
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    for kind, rules in (("workload", WORKLOAD_RULES), ("lease", LEASE_RULES)):
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"asyncendpoints-controller-{kind}"},
            "rules": rules,
        }
        ok(plane.request("POST", f"{rbac}/clusterroles", role), 201, 409)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "asyncendpoints-controller-workload"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "asyncendpoints-controller-workload",
        },
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
    }
    ok(plane.request("POST", f"{rbac}/clusterrolebindings", binding), 201, 409)
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 86_400},
    }
    token = ok(
        plane.request(
            "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{SERVICE_ACCOUNT}/token", request
        )
    )["status"]["token"]
    path = tmp_path_factory.mktemp("controller") / "controller.kubeconfig"
    return write_kubeconfig(path, plane.server, plane.ca_file, token=token, name="controller")


def grant_lease(plane: ControlPlane, namespace: str) -> None:
    """Let the controller's ServiceAccount hold a Lease in ``namespace`` (a RoleBinding)."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "asyncendpoints-controller-lease"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "asyncendpoints-controller-lease",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}
        ],
    }
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
    ok(plane.request("POST", path, binding), 201, 409)


# --- a namespace with the Redis Secret, and pools in it -----------------------------------
class Pools:
    """Create, read, change and delete pools in one namespace."""

    def __init__(self, plane: ControlPlane, namespace: str, redis_url: str, prefix: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.prefix = prefix
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis"},
            "data": {"url": base64.b64encode(redis_url.encode()).decode()},
        }
        ok(plane.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret))
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        plane.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", sa)
        grant_lease(plane, namespace)

    def spec(self, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "image": "asyncendpoints/asyncendpoints:0.1.0",
            "app": "examples.reports:app",
            "jobNames": [JOB_NAME],
            "redis": {"secretRef": {"name": "redis"}, "keyPrefix": self.prefix},
            "minReplicas": 1,
            "maxReplicas": 5,
            "targetJobsPerReplica": 10,
            "pollingIntervalSeconds": 1,
            "scaleDownStabilizationSeconds": 3,
        }
        spec.update(overrides)
        return spec

    def create(self, name: str = "reports", **overrides: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AsyncWorkerPool",
            "metadata": {"name": name},
            "spec": self.spec(**overrides),
        }
        return dict(ok(self.plane.request("POST", pool_path(self.namespace), body)))

    def try_create(self, name: str, spec: dict[str, Any]) -> tuple[int, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AsyncWorkerPool",
            "metadata": {"name": name},
            "spec": spec,
        }
        return self.plane.request("POST", pool_path(self.namespace), body)

    def get(self, name: str = "reports") -> dict[str, Any]:
        status, body = self.plane.request("GET", pool_path(self.namespace, name))
        return dict(body) if status == 200 else {}

    def change_spec(self, name: str = "reports", **changes: Any) -> None:
        """Change spec fields (a PUT, retried when the controller wrote the status meanwhile)."""
        for _ in range(20):
            pool = self.get(name)
            pool["spec"].update(changes)
            status, body = self.plane.request("PUT", pool_path(self.namespace, name), pool)
            if status == 200:
                return
            assert status == 409, f"{status}: {body}"
        pytest.fail("could not change the pool's spec: conflicts every time")

    def delete(self, name: str = "reports") -> None:
        ok(self.plane.request("DELETE", pool_path(self.namespace, name)), 200, 202, 404)

    def deployment(self, pool: str = "reports") -> dict[str, Any]:
        status, body = self.plane.request("GET", deployment_path(self.namespace, pool))
        return dict(body) if status == 200 else {}

    def replicas(self, pool: str = "reports") -> int | None:
        dep = self.deployment(pool)
        return int(dep["spec"]["replicas"]) if dep else None

    def pods(self, pool: str = "reports") -> list[dict[str, Any]]:
        selector = f"{SELECTOR},app.kubernetes.io/instance={pool}"
        path = f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={selector}"
        items = ok(self.plane.request("GET", path))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        items = ok(self.plane.request("GET", f"/api/v1/namespaces/{self.namespace}/events"))
        events = [e for e in items["items"] if e["involvedObject"].get("kind") == "AsyncWorkerPool"]
        return [e for e in events if reason is None or e.get("reason") == reason]

    def cleanup(self) -> None:
        """Delete every pool, lifting kopf's finalizer (the controller may be gone)."""
        status, body = self.plane.request("GET", pool_path(self.namespace))
        for item in (body.get("items") or []) if status == 200 else []:
            name = item["metadata"]["name"]
            if item["metadata"].get("finalizers"):
                item["metadata"]["finalizers"] = []
                self.plane.request("PUT", pool_path(self.namespace, name), item)
            self.plane.request("DELETE", pool_path(self.namespace, name))


@pytest.fixture
def pools(
    crd: ControlPlane, k8s_namespace: str, redis_url: str, key_prefix: str
) -> Iterator[Pools]:
    helper = Pools(crd, k8s_namespace, redis_url, key_prefix)
    yield helper
    helper.cleanup()


@pytest.fixture
async def job_store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    """The pool's store (same Redis, same prefix), to create and drain jobs."""
    store = RedisJobStore(redis_url, prefix=key_prefix, timeout=2.0)
    await store.open()
    yield store
    await store.close()


async def add_jobs(store: RedisJobStore, count: int, name: str = JOB_NAME) -> list[str]:
    jobs = await store.create_many([NewJob.build(name, b"{}") for _ in range(count)])
    return [j.id for j in jobs]


# --- the controller as a real process ----------------------------------------------------------
class ControllerProcess:
    """``python -m controller`` with the least-privilege kubeconfig; JSON logs in a file."""

    def __init__(
        self, kubeconfig: Path, namespace: str, log: Path, *args: str, identity: str | None = None
    ) -> None:
        self.identity = identity or f"ctl-{uuid.uuid4().hex[:6]}"
        self.log = log
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "ASYNCENDPOINTS_LOG_FORMAT": "json",
            "ASYNCENDPOINTS_LOG_LEVEL": "INFO",
            "ASYNCENDPOINTS_REDIS_TIMEOUT": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        argv = [
            sys.executable,
            "-m",
            "controller",
            "--namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--metrics-port",
            "0",
            "--identity",
            self.identity,
            "--lease-duration",
            "4",
            "--renew-deadline",
            "3",
            "--retry-period",
            "0.5",
            *args,
        ]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def lines(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"message": line})
        return records

    def logged(self, fragment: str) -> bool:
        return any(fragment in str(r.get("message", "")) for r in self.lines())

    def tail(self, count: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-count:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crashed node would."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


@pytest.fixture
def start_controller(
    controller_kubeconfig: Path, pools: Pools, tmp_path: Path
) -> Iterator[Callable[..., ControllerProcess]]:
    """Start controllers for the test's namespace; each stops (SIGTERM) after the test."""
    started: list[ControllerProcess] = []

    def start(*args: str, identity: str | None = None) -> ControllerProcess:
        log = tmp_path / f"controller-{len(started)}.log"
        proc = ControllerProcess(
            controller_kubeconfig, pools.namespace, log, *args, identity=identity
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
    failed = [p for p in started if "Traceback" in p.log.read_text(errors="replace")]
    if failed:
        print(f"controller log with a traceback:\n{failed[0].tail(60)}")


@pytest.fixture
async def controller(start_controller: Callable[..., ControllerProcess]) -> ControllerProcess:
    """One controller, already the leader."""
    proc = start_controller()
    await wait_for(
        "the controller to lead",
        lambda: proc.logged("starting the operator") or not proc.alive(),
        timeout=30,
    )
    assert proc.alive(), proc.tail()
    return proc
