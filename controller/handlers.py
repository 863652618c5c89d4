"""The kopf handlers, in a registry of their own (:data:`REGISTRY`).

* an index of pools, so that a pod handler finds its pool at once;
* a daemon per pool: a tick every ``pollingIntervalSeconds`` (sooner when the spec changes
  or a lost worker's jobs came back), see :mod:`controller.reconcile`;
* an event handler on the pools' worker pods: a pod deleted or Failed has its jobs
  recovered at once.

No handler stores state on the objects (no change-detecting handlers); the daemon makes
kopf put its finalizer on pools, so that the daemon stops before a pool goes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from controller import crd, metrics
from controller.reconcile import Controller, PoolRef
from controller.recovery import POD_DELETED, POD_FAILED
from controller.spec import DEFAULT_POLLING_INTERVAL_SECONDS

log = logging.getLogger("asyncendpoints.controller")

REGISTRY = kopf.OperatorRegistry()
WORKER_POD_LABELS = {crd.NAME_LABEL: crd.WORKER_NAME, crd.COMPONENT_LABEL: crd.WORKER_COMPONENT}


def controller_of(memo: Any) -> Controller:
    ctl = memo["controller"]
    assert isinstance(ctl, Controller)
    return ctl


@kopf.on.login(registry=REGISTRY)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: ``$KUBECONFIG`` (kopf's own readers)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.index(crd.GROUP, crd.VERSION, crd.PLURAL, registry=REGISTRY)
def pool_index(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, PoolRef]:
    """(namespace, pool name) -> what a pod handler needs to recover the pool's jobs."""
    return {(namespace, name): PoolRef.of(body)}


@kopf.daemon(
    crd.GROUP, crd.VERSION, crd.PLURAL, id="autoscaler", registry=REGISTRY, cancellation_timeout=5.0
)
async def autoscaler(
    body: kopf.Body,
    uid: str,
    namespace: str | None,
    name: str,
    stopped: kopf.DaemonStopped,
    memo: Any,
    **_: Any,
) -> None:
    """Reconcile the pool until it is deleted (or the operator stops)."""
    ctl = controller_of(memo)
    state = ctl.state(uid)
    log.info("reconciling the pool", extra={"namespace": namespace, "pool": name})
    try:
        while not stopped:
            state.wake.clear()
            try:
                interval = await ctl.reconcile(body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # log, count, and try again at the next tick
                interval = float(
                    (body.get("spec") or {}).get("pollingIntervalSeconds")
                    or DEFAULT_POLLING_INTERVAL_SECONDS
                )
                metrics.ERRORS.labels(namespace, name, type(exc).__name__).inc()
                log.exception(
                    "reconciliation failed: %s", exc, extra={"namespace": namespace, "pool": name}
                )
            await _sleep(interval, state.wake, stopped)
    finally:
        await ctl.forget(uid, namespace or "", name)
        log.info("stopped reconciling the pool", extra={"namespace": namespace, "pool": name})


async def _sleep(seconds: float, wake: asyncio.Event, stopped: kopf.DaemonStopped) -> None:
    """Until the next tick: ``seconds``, or less when woken or stopped."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@kopf.on.event(crd.GROUP, crd.VERSION, crd.PLURAL, registry=REGISTRY)
def pool_event(event: kopf.RawEvent, body: kopf.Body, uid: str, memo: Any, **_: Any) -> None:
    """A changed spec (a new generation) is reconciled now, not at the next tick."""
    if event.get("type") == "DELETED":
        return
    generation = body.get("metadata", {}).get("generation")
    if generation != (body.get("status") or {}).get("observedGeneration"):
        controller_of(memo).wake(uid)


@kopf.on.event("", "v1", "pods", labels=WORKER_POD_LABELS, registry=REGISTRY)
async def worker_pod_event(
    event: kopf.RawEvent,
    name: str,
    namespace: str | None,
    uid: str,
    labels: kopf.Labels,
    status: kopf.Status,
    memo: Any,
    **kwargs: Any,
) -> None:
    """A worker pod deleted, or Failed: put its jobs back in the queue now."""
    ctl = controller_of(memo)
    pool_index: kopf.Index[Any, PoolRef] = kwargs["pool_index"]
    if event.get("type") == "DELETED":
        cause = POD_DELETED
        ctl.failed_pods.discard(uid)
    elif status.get("phase") == "Failed" and uid not in ctl.failed_pods:
        cause = POD_FAILED
        ctl.failed_pods.add(uid)
    else:
        return
    pool = labels.get(crd.INSTANCE_LABEL)
    for ref in pool_index.get((namespace, pool), []):
        await ctl.worker_lost(ref, name, cause)
