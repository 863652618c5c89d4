"""One reconciliation of a pool, and the recovery of a lost worker's jobs.

A tick (run by the pool's kopf daemon every ``pollingIntervalSeconds``):

1. read the pool's queues from its store (promoting due retries, so that a pool scaled to
   zero still sees them), and recover expired leases and dead workers' jobs;
2. make sure the worker Deployment exists and matches the spec (unless ``paused``);
3. scale: at most one ``spec.replicas`` patch, only when the decision changes it, with
   pod-deletion costs set first when scaling down (idle pods go first);
4. write the status when it changed.

A Redis that does not answer leaves the replicas as they are (StoreReachable=False).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from asyncendpoints.errors import StoreUnavailableError
from asyncendpoints.store import JobStore
from asyncendpoints.types import WorkerId
from controller import crd, deployment, metrics
from controller.kube import Kube, KubeError, core_path, group_path
from controller.recovery import Recovery, recover_worker, served_names, sweep
from controller.scaling import Backlog, Recommendation, decide, desired_replicas, replicas_text
from controller.spec import DEFAULT_POLLING_INTERVAL_SECONDS, PoolSpec, SpecError, plain
from controller.status import READY, SCALING, STORE_REACHABLE, StatusReport, differs, now_rfc3339
from controller.stores import StoreCache, StoreConfigError

log = logging.getLogger("asyncendpoints.controller")


@dataclass(frozen=True, slots=True)
class PoolRef:
    """What the pod handlers need to know of a pool (kept in a kopf index)."""

    namespace: str
    name: str
    uid: str
    spec: Mapping[str, Any]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> PoolRef:
        meta = body["metadata"]
        return cls(meta["namespace"], meta["name"], meta["uid"], plain(body.get("spec") or {}))

    def owner(self) -> kopf.Body:
        """A body to post Events on."""
        raw = {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }
        return kopf.Body(cast(kopf.RawBody, raw))


@dataclass(slots=True)
class PoolState:
    """What the controller remembers of a pool between ticks (in memory only)."""

    history: list[Recommendation] = field(default_factory=list)
    seeded: bool = False
    """False until the history holds the replicas found at start (no scale-down at once
    after a controller restart)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    store_ok: bool | None = None


def _extra(namespace: str, name: str, **more: Any) -> dict[str, Any]:
    return {"namespace": namespace, "pool": name, **more}


class Controller:
    """The reconciler shared by every handler (kopf's operator memo carries it)."""

    def __init__(
        self, kube: Kube, stores: StoreCache, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube = kube
        self.stores = stores
        self.clock = clock
        self.pools: dict[str, PoolState] = {}
        self.failed_pods: set[str] = set()
        """Uids of Failed worker pods already recovered (a Failed pod stays until deleted)."""

    def state(self, uid: str) -> PoolState:
        return self.pools.setdefault(uid, PoolState())

    def wake(self, uid: str) -> None:
        """Run the pool's next tick now (its spec changed)."""
        state = self.pools.get(uid)
        if state is not None:
            state.wake.set()

    async def forget(self, uid: str, namespace: str, name: str) -> None:
        self.pools.pop(uid, None)
        await self.stores.release(uid)
        metrics.forget_pool(namespace, name)

    # -- the tick ----------------------------------------------------------------------------
    async def reconcile(self, body: kopf.Body) -> float:
        """One tick; returns the seconds until the next one."""
        started = time.perf_counter()
        meta = body["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        state = self.state(uid)
        previous = plain(body.get("status") or {})
        report = StatusReport(generation=int(meta.get("generation") or 0))
        try:
            spec = PoolSpec.parse(body.get("spec") or {})
        except SpecError as exc:
            report.add(READY, False, "InvalidSpec", str(exc))
            report.add(SCALING, False, "InvalidSpec", str(exc))
            await self._write_status(namespace, name, report, previous)
            return float(DEFAULT_POLLING_INTERVAL_SECONDS)
        store, backlog = await self._read_store(body, spec, state, report)
        dep = await self._ensure_deployment(body, spec, state, backlog, report)
        if dep is not None:
            await self._scale(body, spec, state, dep, store, backlog, report)
        self._ready(spec, dep, backlog is not None, report)
        await self._write_status(namespace, name, report, previous)
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
        return float(spec.polling_interval_seconds)

    async def _read_store(
        self, body: kopf.Body, spec: PoolSpec, state: PoolState, report: StatusReport
    ) -> tuple[JobStore | None, Backlog | None]:
        meta = body["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        try:
            store = await self.stores.for_pool(uid, namespace, spec.redis)
            names = await served_names(store, spec.job_names)
            if names:
                await store.promote_due(names)
            stats = [await store.stats(n) for n in names]
            backlog = Backlog(
                queued=sum(s.queued for s in stats),
                in_progress=sum(s.in_progress for s in stats),
                scheduled=sum(s.scheduled for s in stats),
            )
            recoveries = await sweep(store, names)
        except (StoreConfigError, StoreUnavailableError) as exc:
            reason = exc.reason if isinstance(exc, StoreConfigError) else "StoreUnavailable"
            report.add(STORE_REACHABLE, False, reason, str(exc))
            metrics.STORE_UP.labels(namespace, name).set(0)
            metrics.ERRORS.labels(namespace, name, reason).inc()
            if state.store_ok is not False:
                log.warning("job store unreachable: %s", exc, extra=_extra(namespace, name))
                kopf.warn(body, reason=reason, message=f"job store unreachable: {exc}")
            state.store_ok = False
            return None, None
        served = ", ".join(names) if names else "no job names registered yet"
        report.add(STORE_REACHABLE, True, "Connected", f"serving {served}")
        metrics.STORE_UP.labels(namespace, name).set(1)
        if state.store_ok is False:
            log.info("job store reachable again", extra=_extra(namespace, name))
            kopf.info(body, reason="StoreReachable", message="the job store answers again")
        state.store_ok = True
        report.counts = {
            "queued": backlog.queued,
            "inProgress": backlog.in_progress,
            "scheduled": backlog.scheduled,
        }
        metrics.QUEUED.labels(namespace, name).set(backlog.queued)
        metrics.IN_PROGRESS.labels(namespace, name).set(backlog.in_progress)
        metrics.SCHEDULED.labels(namespace, name).set(backlog.scheduled)
        if recoveries:
            for recovery in recoveries:
                self._recovered(body, recovery)
            jobs = sum(len(r.jobs) for r in recoveries)
            report.last_recovery = {"time": now_rfc3339(), "jobs": jobs}
        return store, backlog

    def _recovered(self, owner: kopf.Body, recovery: Recovery) -> None:
        """Log, count and announce a recovery."""
        namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
        metrics.RECOVERED.labels(namespace, name, recovery.cause).inc(len(recovery.jobs))
        log.info(
            recovery.message,
            extra=_extra(namespace, name, cause=recovery.cause, jobs=len(recovery.jobs)),
        )
        kopf.info(owner, reason="JobsRecovered", message=recovery.message)

    async def _ensure_deployment(
        self,
        body: kopf.Body,
        spec: PoolSpec,
        state: PoolState,
        backlog: Backlog | None,
        report: StatusReport,
    ) -> dict[str, Any] | None:
        meta = body["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        dname = crd.deployment_name(name)
        path = group_path("apps", "v1", namespace, "deployments", dname)
        existing = await self.kube.get_or_none(path)
        if existing is not None:
            owners = existing["metadata"].get("ownerReferences") or []
            other = [r for r in owners if r.get("controller") and r.get("uid") != uid]
            if other:
                boss = f"{other[0].get('kind')} {other[0].get('name')}"
                message = f"Deployment {dname} is controlled by {boss}"
                report.add(SCALING, False, "DeploymentConflict", message)
                return None
        if spec.paused:
            return existing
        initial = spec.min_replicas
        if backlog is not None:
            initial = desired_replicas(
                backlog.total, spec.target_jobs_per_replica, spec.min_replicas, spec.max_replicas
            )
        desired = deployment.build(name, namespace, spec, replicas=initial)
        kopf.adopt(desired, owner=body)
        if existing is None:
            created = await self.kube.request("POST", path.rsplit("/", 1)[0], desired)
            state.history, state.seeded = [Recommendation(self.clock(), initial)], True
            report.last_scale_time = now_rfc3339()
            message = f"created Deployment {dname} with {replicas_text(initial)}"
            log.info(message, extra=_extra(namespace, name, replicas=initial))
            kopf.info(body, reason="DeploymentCreated", message=message)
            return created
        owned = any(r.get("uid") == uid for r in existing["metadata"].get("ownerReferences") or [])
        if owned and deployment.current_hash(existing) == deployment.current_hash(desired):
            return existing
        try:
            updated = await self.kube.request(
                "PUT", path, deployment.merged_for_update(existing, desired)
            )
        except KubeError as exc:
            if not exc.conflict:
                raise
            return existing  # changed under us: the next tick sees the new version
        message = f"updated Deployment {dname} to the pool's spec (image {spec.image})"
        log.info(message, extra=_extra(namespace, name))
        kopf.info(body, reason="DeploymentUpdated", message=message)
        return updated

    async def _scale(
        self,
        body: kopf.Body,
        spec: PoolSpec,
        state: PoolState,
        dep: dict[str, Any],
        store: JobStore | None,
        backlog: Backlog | None,
        report: StatusReport,
    ) -> None:
        meta = body["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        current = int(dep.get("spec", {}).get("replicas", 1))
        report.replicas = {
            "desiredReplicas": current,
            "currentReplicas": current,
            "readyReplicas": int((dep.get("status") or {}).get("readyReplicas") or 0),
        }
        metrics.CURRENT_REPLICAS.labels(namespace, name).set(current)
        metrics.READY_REPLICAS.labels(namespace, name).set(report.replicas["readyReplicas"])
        if spec.paused:
            report.add(
                SCALING,
                False,
                "Paused",
                f"paused: the Deployment is left alone at {replicas_text(current)}",
            )
            return
        if store is None or backlog is None:
            report.add(
                SCALING,
                False,
                "StoreUnavailable",
                f"keeping {replicas_text(current)} until the store answers",
            )
            return
        now = self.clock()
        if not state.seeded:
            state.history, state.seeded = [Recommendation(now, current)], True
        decision, state.history = decide(
            backlog,
            current=current,
            target_per_replica=spec.target_jobs_per_replica,
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            window=spec.scale_down_stabilization_seconds,
            history=state.history,
            now=now,
        )
        if decision.changes:
            if decision.direction == "down":
                await self._set_deletion_costs(namespace, name, store)
            path = group_path("apps", "v1", namespace, "deployments", crd.deployment_name(name))
            await self.kube.merge_patch(path, {"spec": {"replicas": decision.replicas}})
            report.last_scale_time = now_rfc3339()
            report.replicas["currentReplicas"] = decision.replicas
            metrics.SCALINGS.labels(namespace, name, decision.direction).inc()
            log.info(
                decision.message,
                extra=_extra(namespace, name, replicas=decision.replicas, previous=current),
            )
            kopf.info(body, reason=decision.reason, message=decision.message)
        report.replicas["desiredReplicas"] = decision.replicas
        metrics.DESIRED_REPLICAS.labels(namespace, name).set(decision.replicas)
        report.add(SCALING, True, decision.reason, decision.message)

    async def _set_deletion_costs(self, namespace: str, name: str, store: JobStore) -> None:
        """Annotate the pool's pods so that the ReplicaSet deletes idle workers first.

        The cost of a pod is its worker's in-flight job count (0 for an idle worker or one
        that never registered); the ReplicaSet controller removes the lowest costs first.
        """
        pods = await self.kube.request(
            "GET", core_path(namespace, "pods"), query={"labelSelector": crd.selector_string(name)}
        )
        in_flight: dict[WorkerId, int] = {w.worker_id: w.in_flight for w in await store.workers()}
        patches = []
        for pod in pods.get("items") or []:
            pod_meta = pod["metadata"]
            if pod_meta.get("deletionTimestamp"):
                continue
            cost = str(in_flight.get(pod_meta["name"], 0))
            if (pod_meta.get("annotations") or {}).get(crd.POD_DELETION_COST) != cost:
                patch = {"metadata": {"annotations": {crd.POD_DELETION_COST: cost}}}
                path = core_path(namespace, "pods", pod_meta["name"])
                patches.append(self.kube.merge_patch(path, patch))
        results = await asyncio.gather(*patches, return_exceptions=True)
        for result in results:
            if isinstance(result, KubeError) and not result.not_found:
                log.warning(
                    "cannot set a pod deletion cost: %s", result, extra=_extra(namespace, name)
                )

    def _ready(
        self, spec: PoolSpec, dep: dict[str, Any] | None, store_ok: bool, report: StatusReport
    ) -> None:
        if dep is None:
            reason = "Paused" if spec.paused else "DeploymentMissing"
            report.add(READY, False, reason, "the worker Deployment does not exist")
            if report.condition(SCALING) is None:
                report.add(SCALING, False, reason, "no Deployment to scale")
            return
        if not store_ok:
            report.add(READY, False, "StoreUnavailable", "the job store does not answer")
            return
        want = report.replicas.get("currentReplicas", 0)
        ready = report.replicas.get("readyReplicas", 0)
        if want == 0:
            report.add(READY, True, "ScaledToZero", "no workers needed: the queues are empty")
        elif ready >= want:
            report.add(READY, True, "WorkersReady", f"{ready}/{want} workers ready")
        else:
            report.add(READY, False, "WorkersNotReady", f"{ready}/{want} workers ready")

    async def _write_status(
        self, namespace: str, name: str, report: StatusReport, previous: Mapping[str, Any]
    ) -> None:
        status = report.patch(previous)
        if not differs(status, previous):
            return
        path = group_path(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, name) + "/status"
        try:
            await self.kube.merge_patch(path, {"status": status})
        except KubeError as exc:
            if not exc.not_found:  # a deleted pool needs no status
                raise

    # -- a worker pod went ---------------------------------------------------------------------
    async def worker_lost(self, pool: PoolRef, pod_name: str, cause: str) -> Recovery | None:
        """Recover the jobs of the worker ``pod_name`` now; None when the store is unreachable."""
        extra = _extra(pool.namespace, pool.name, pod=pod_name, cause=cause)
        try:
            spec = PoolSpec.parse(pool.spec)
            store = await self.stores.for_pool(pool.uid, pool.namespace, spec.redis)
            names = await served_names(store, spec.job_names)
            recovery = await recover_worker(store, pod_name, names, cause)
        except (SpecError, StoreConfigError, StoreUnavailableError) as exc:
            log.warning(
                "cannot recover the jobs of %s now (lease expiry will): %s",
                pod_name,
                exc,
                extra=extra,
            )
            return None
        if not recovery.jobs:
            log.debug("worker %s held no jobs", pod_name, extra=extra)
            return recovery
        self._recovered(pool.owner(), recovery)
        last = {"time": now_rfc3339(), "jobs": len(recovery.jobs)}
        path = group_path(crd.GROUP, crd.VERSION, pool.namespace, crd.PLURAL, pool.name) + "/status"
        try:
            await self.kube.merge_patch(path, {"status": {"lastRecovery": last}})
        except KubeError as exc:
            log.warning("cannot record the recovery in the status: %s", exc, extra=extra)
        self.wake(pool.uid)  # the backlog grew: let the pool scale now
        return recovery
