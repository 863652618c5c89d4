"""The chart end to end: helm install into the test control plane, the controller and the API
as local processes (the controller with the chart's ServiceAccount token, so a missing RBAC
rule fails this test), worker Pods run by the kubelet stand-in, 1,000 jobs over HTTP, a
worker killed with SIGKILL mid-run, and every job Completed exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from asyncendpoints.store.redis import RedisJobStore
from tests.charts.chart import CHART, CRD_NAME, EXAMPLE_POOL, Helm
from tests.charts.cluster import (
    LocalProcess,
    ensure_node,
    format_table,
    free_local_port,
    http_ready,
    ok,
    printer_table,
    reset_crd,
    run_deployment_locally,
    service_account_kubeconfig,
    wait_until,
    worker_command,
)
from tests.charts.kube import Kube
from tests.k8s.testbed import ControlPlane
from tests.support.kubelet import Kubelet

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

JOBS = 1000
JOB_SECONDS = 0.4  # one page of the example report
POOL = "reports"
MAX_REPLICAS = 4
CONCURRENCY = 8
KILL_BACKLOG = 2 * MAX_REPLICAS * CONCURRENCY  # kill while at least this much work is left
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
NODE = "e2e-local-processes"
WORKER_SELECTOR = f"app.kubernetes.io/name=asyncendpoints-worker,app.kubernetes.io/instance={POOL}"


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _stats(url: str, prefix: str, name: str) -> Any:
    store = RedisJobStore(url, prefix=prefix)
    await store.open()
    try:
        return await store.stats(name)
    finally:
        await store.close()


def stats(url: str, prefix: str, name: str = "generate-report") -> Any:
    return asyncio.run(_stats(url, prefix, name))


async def _workers(url: str, prefix: str) -> Any:
    store = RedisJobStore(url, prefix=prefix)
    await store.open()
    try:
        return await store.workers()
    finally:
        await store.close()


def workers(url: str, prefix: str) -> Any:
    """The live workers as they registered (their in-flight counts refresh with heartbeats)."""
    return asyncio.run(_workers(url, prefix))


async def _submit(base: str, count: int) -> list[str]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(64)

        async def one(i: int) -> str:
            async with gate:
                body = {"month": "2026-11", "pages": 1, "seconds_per_page": JOB_SECONDS}
                response = await client.post(f"/reports/r{i % 7}", json=body)
                assert response.status_code == 202, response.text
                location = response.headers["location"]
                job = response.json()
                assert location == f"/jobs/{job['id']}"
                return str(job["id"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _read_back(base: str, ids: list[str]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        gate = asyncio.Semaphore(64)

        async def one(job_id: str) -> dict[str, Any]:
            async with gate:
                response = await client.get(f"/jobs/{job_id}")
                assert response.status_code == 200, response.text
                return dict(response.json())

        return list(await asyncio.gather(*(one(i) for i in ids)))


def controller_deployment_probe(kube: Kube, namespace: str) -> str:
    dep = ok(kube.get("apps/v1", "Deployment", "ae-asyncendpoints-controller", namespace))
    probe = dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
    assert probe["port"] == "metrics"
    return str(probe["path"])


@pytest.fixture
def processes() -> Iterator[list[LocalProcess]]:
    started: list[LocalProcess] = []
    yield started
    for proc in reversed(started):
        proc.stop()


@pytest.mark.timeout(900)
def test_install_scale_recover_and_drain(
    k8s_controller_manager: ControlPlane,
    cluster_helm: Helm,
    redis_url: str,
    processes: list[LocalProcess],
    tmp_path: Path,
) -> None:
    plane = k8s_controller_manager
    kube = Kube(plane.api_client())
    reset_crd(kube, CRD_NAME)  # other tests made it without Helm: helm must own it
    ns = f"ae-e2e-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(ns, RESTRICTED)
    prefix = f"e2e{uuid.uuid4().hex[:8]}"

    # --- helm install ----------------------------------------------------------------------
    started = time.monotonic()
    cluster_helm.run(
        "install",
        "ae",
        str(CHART),
        "--namespace",
        ns,
        "--set",
        f"redis.url={redis_url}",
        "--set",
        f"redis.keyPrefix={prefix}",
        "--set",
        "api.replicaCount=1",
    )
    log(f"helm install took {time.monotonic() - started:.1f} s")
    status = json.loads(cluster_helm.run("status", "ae", "-n", ns, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    crd = kube.wait_crd_established(CRD_NAME)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "ae"
    # the ReplicaSets made the chart's pods under "restricted" enforcement (no kubelet runs them)
    for component in ("api", "controller"):
        wait_until(
            f"a {component} pod admitted in {ns}",
            lambda c=component: ok(
                kube.request(
                    "GET",
                    f"/api/v1/namespaces/{ns}/pods",
                    query=[("labelSelector", f"app.kubernetes.io/component={c}")],
                )
            )["items"],
            60,
        )

    # --- the controller, with the chart's ServiceAccount and nothing more -------------------
    controller_kubeconfig = service_account_kubeconfig(
        kube,
        plane.server,
        plane.ca_file,
        ns,
        "ae-asyncendpoints-controller",
        tmp_path / "controller.kubeconfig",
    )
    metrics_port = free_local_port()
    controller = run_deployment_locally(
        kube,
        ns,
        "ae-asyncendpoints-controller",
        workdir=tmp_path,
        overrides={
            "ASYNCENDPOINTS_CONTROLLER_METRICS_PORT": str(metrics_port),
            "ASYNCENDPOINTS_LOG_FORMAT": "text",
        },
        kubeconfig=controller_kubeconfig,
    )
    processes.append(controller)
    assert "--lease-name=ae-asyncendpoints-controller" in controller.argv
    lease = wait_until(
        "the controller to hold its Lease",
        lambda: (lambda a: a.ok and a.body["spec"].get("holderIdentity") and a.body)(
            kube.get("coordination.k8s.io/v1", "Lease", "ae-asyncendpoints-controller", ns)
        ),
        60,
    )
    log(f"controller holds the Lease as {lease['spec']['holderIdentity']}")
    # the chart's liveness probe of the controller answers
    probe = controller_deployment_probe(kube, ns)
    assert http_ready(f"http://127.0.0.1:{metrics_port}{probe}"), controller.tail()

    # --- the API ------------------------------------------------------------------------------
    port = free_local_port()
    api = run_deployment_locally(
        kube,
        ns,
        "ae-asyncendpoints-api",
        workdir=tmp_path,
        overrides={"ASYNCENDPOINTS_HOST": "127.0.0.1", "ASYNCENDPOINTS_PORT": str(port)},
    )
    processes.append(api)
    assert api.argv[1:] == ["api", "examples.reports:app"]
    base = f"http://127.0.0.1:{port}"
    wait_until("the API's /readyz", lambda: http_ready(f"{base}/readyz") or not api.alive(), 60)
    assert api.alive(), api.tail()

    # --- the example pool ---------------------------------------------------------------------
    pool = yaml.safe_load(EXAMPLE_POOL.read_text())
    assert pool["metadata"]["name"] == POOL
    pool["metadata"]["namespace"] = ns
    pool["spec"].update(
        minReplicas=0,
        maxReplicas=MAX_REPLICAS,
        targetJobsPerReplica=50,
        concurrency=CONCURRENCY,
        pollingIntervalSeconds=1,
        scaleDownStabilizationSeconds=5,
        leaseSeconds=15,
        shutdownGraceSeconds=5,
    )
    pool["spec"]["redis"]["keyPrefix"] = prefix
    ok(kube.apply(pool))
    deployment = wait_until(
        "the controller to create the worker Deployment",
        lambda: (lambda a: a.ok and a.body)(
            kube.get("apps/v1", "Deployment", f"{POOL}-worker", ns)
        ),
        60,
    )
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("AsyncWorkerPool", POOL, True)

    tables: list[str] = []

    def snapshot(note: str) -> dict[str, Any]:
        columns, rows = printer_table(kube, ns)
        text = format_table(columns, rows)
        if not tables or tables[-1].split("\n", 1)[1] != text:
            tables.append(f"{note}\n{text}")
            log(f"kubectl get awp ({note}):\n{text}")
        return dict(zip(columns, rows[0], strict=True))

    wait_until("the pool's printer columns", lambda: snapshot("idle").get("Ready") is not None, 30)
    first = snapshot("idle")
    assert {"Min", "Max", "Desired", "Ready", "Queued", "In Progress"} <= set(first)

    workers_log = tmp_path / "workers"
    workers_log.mkdir()
    ensure_node(kube, NODE)
    with Kubelet(
        plane.kubeconfig,
        ns,
        WORKER_SELECTOR,
        worker_command(kube, ns, NODE),
        on_exit="fail",
        grace=10,
        log_dir=workers_log,
    ) as kubelet:
        # --- 1,000 jobs over HTTP, while we watch the pool -------------------------------------
        submission: dict[str, Any] = {}

        def submit() -> None:
            t = time.monotonic()
            try:
                submission["ids"] = asyncio.run(_submit(base, JOBS))
            except BaseException as exc:  # reported by the main thread
                submission["error"] = exc
            submission["seconds"] = time.monotonic() - t

        t0 = time.monotonic()
        submitter = threading.Thread(target=submit, name="submit-jobs")
        submitter.start()

        timeline: list[tuple[float, int, int]] = []  # (seconds since t0, replicas, running)
        victim: str | None = None
        killed_at = 0.0
        drained_at = 0.0
        deadline = time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, (
                f"the backlog did not drain; controller log:\n{controller.tail()}"
            )
            assert controller.alive(), controller.tail()
            assert "error" not in submission, submission.get("error")
            dep = ok(kube.get("apps/v1", "Deployment", f"{POOL}-worker", ns))
            replicas = int(dep["spec"].get("replicas") or 0)
            running = kubelet.running()
            if not timeline or timeline[-1][1:] != (replicas, len(running)):
                timeline.append((time.monotonic() - t0, replicas, len(running)))
                log(
                    f"replicas {replicas}, worker processes {len(running)} "
                    f"({time.monotonic() - t0:.1f} s)"
                )
            snapshot("draining")
            s = stats(redis_url, prefix)
            busy = {
                w.worker_id: w.in_flight
                for w in workers(redis_url, prefix)
                if w.worker_id in running and w.in_flight > 0
            }
            if victim is None and len(running) >= 2 and s.queued > KILL_BACKLOG and busy:
                victim = max(busy, key=lambda w: busy[w])
                process = kubelet.process(victim)
                assert process is not None
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
                killed_at = time.monotonic()
                # what a kubelet reports: the pod is gone
                ok(
                    kube.request(
                        "DELETE",
                        f"/api/v1/namespaces/{ns}/pods/{victim}",
                        query=[("gracePeriodSeconds", "0")],
                    )
                )
                log(f"SIGKILLed worker {victim} ({busy[victim]} jobs in flight, {s.queued} queued)")
            if (
                "ids" in submission
                and s.completed + s.failed >= JOBS
                and s.queued == 0
                and s.in_progress == 0
            ):
                drained_at = time.monotonic()
                break
            time.sleep(0.5)
        submitter.join()
        ids = submission["ids"]
        assert len(set(ids)) == JOBS
        drained = drained_at - t0
        max_replicas = max(r for _, r, _ in timeline)
        first_up = next((t for t, r, _ in timeline if r > 0), None)
        log(
            f"submitted {JOBS} jobs in {submission['seconds']:.1f} s "
            f"({JOBS / submission['seconds']:.0f}/s, workers running meanwhile)"
        )
        log(
            f"drained {JOBS} jobs in {drained:.1f} s; first scale-up {first_up} s after the "
            f"first submission; max replicas {max_replicas}; timeline {timeline}"
        )

        # --- every job Completed, exactly once -------------------------------------------------
        final = stats(redis_url, prefix)
        assert (final.completed, final.failed, final.canceled) == (JOBS, 0, 0), final
        jobs = asyncio.run(_read_back(base, ids))
        assert [j["status"] for j in jobs] == ["Completed"] * JOBS
        assert all(j["result"]["month"] == "2026-11" for j in jobs)
        retried = [j for j in jobs if j["retryCount"] > 0]
        counts: dict[int, int] = {}
        for j in retried:
            counts[j["retryCount"]] = counts.get(j["retryCount"], 0) + 1
        log(f"{len(retried)} jobs were run again (by retry count: {counts})")

        # --- scaling and recovery happened, by the controller -----------------------------------
        assert victim is not None, "no worker was killed: the pool never ran 2 workers"
        assert first_up is not None and first_up < 10, timeline
        assert 2 <= max_replicas <= MAX_REPLICAS, timeline
        recovered = ok(kube.get("asyncendpoints.io/v1alpha1", "AsyncWorkerPool", POOL, ns))
        last = recovered["status"].get("lastRecovery") or {}
        assert last.get("jobs", 0) >= 1, recovered["status"]
        assert len(retried) >= 1, "the killed worker's jobs must have run again"
        log(f"recovery: {last} ({len(retried)} jobs retried; killed {killed_at - t0:.1f} s in)")

        # --- and the pool scales back down (minReplicas 0) ---------------------------------------
        wait_until(
            "the worker Deployment to scale to 0",
            lambda: (
                int(
                    ok(kube.get("apps/v1", "Deployment", f"{POOL}-worker", ns))["spec"].get(
                        "replicas"
                    )
                    or 0
                )
                == 0
            ),
            60,
        )
        kubelet.wait_for(lambda k: not k.running(), timeout=60, what="the workers to stop")
        log(
            f"no worker runs {time.monotonic() - drained_at:.1f} s after the drain "
            "(stabilization window 5 s)"
        )
        row = snapshot("drained")
        assert str(row["Desired"]) == "0" and str(row["Queued"]) == "0"

    events = ok(kube.request("GET", f"/api/v1/namespaces/{ns}/events"))["items"]
    pool_events = [e for e in events if e["involvedObject"].get("name") == POOL]
    reasons = {e["reason"] for e in pool_events}
    for event in pool_events:
        log(f"event {event['reason']} x{event.get('count', 1)}: {event['message']}")
    assert {"DeploymentCreated", "ScaledUp", "ScaledDown", "JobsRecovered"} <= reasons
    # only the killed worker lost jobs: the workers removed by scale-downs drained theirs
    recoveries = [e["message"] for e in pool_events if e["reason"] == "JobsRecovered"]
    assert recoveries and all(victim in m for m in recoveries), recoveries
    text = controller.log.read_text(errors="replace")
    assert "Forbidden" not in text and " 403" not in text, controller.tail(80)
    assert controller.alive()
    log("printer columns along the way:\n" + "\n\n".join(tables))

    # --- tidy up: the pool goes while the controller still runs (its finalizer) -----------------
    kube.delete("asyncendpoints.io/v1alpha1", "AsyncWorkerPool", POOL, ns)
    wait_until(
        "the pool to go",
        lambda: kube.get("asyncendpoints.io/v1alpha1", "AsyncWorkerPool", POOL, ns).status == 404,
        60,
    )
    cluster_helm.run("uninstall", "ae", "--namespace", ns)
