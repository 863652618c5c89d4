"""Putting a lost worker's jobs back: at once when its pod goes, else by lease expiry.

* A worker pod deleted or Failed: ``recover_worker(pod name, names)`` (the worker id is
  the pod name) moves its InProgress jobs back to Queued (or Failed when out of retries).
* Every tick: ``recover_expired(names)`` for leases that ran out, and
  ``dead_workers(names)`` -> ``recover_worker`` for workers whose registration expired
  while they still hold leases (a pod that vanished while the controller was away).

The store's fencing tokens make a late write of the lost worker harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asyncendpoints.store import JobStore
from asyncendpoints.types import JobId, JobName, WorkerId

POD_DELETED = "pod-deleted"
POD_FAILED = "pod-failed"
LEASE_EXPIRED = "lease-expired"
DEAD_WORKER = "dead-worker"

_WHY = {
    POD_DELETED: "its pod was deleted",
    POD_FAILED: "its pod failed",
    DEAD_WORKER: "it stopped reporting",
}


@dataclass(frozen=True, slots=True)
class Recovery:
    """Jobs recovered for one cause (and one worker, unless the cause is lease expiry)."""

    cause: str
    jobs: tuple[JobId, ...]
    worker_id: WorkerId | None = None

    @property
    def message(self) -> str:
        count = f"{len(self.jobs)} job{'s' if len(self.jobs) != 1 else ''}"
        if self.cause == LEASE_EXPIRED:
            return f"recovered {count} whose lease expired"
        return f"recovered {count} of worker {self.worker_id} ({_WHY.get(self.cause, self.cause)})"


async def served_names(store: JobStore, job_names: Sequence[JobName]) -> list[JobName]:
    """The pool's job names; all registered names when the pool lists none."""
    return list(job_names) if job_names else await store.names()


async def recover_worker(
    store: JobStore, worker_id: WorkerId, names: Sequence[JobName], cause: str
) -> Recovery:
    jobs = await store.recover_worker(worker_id, names) if names else []
    return Recovery(cause, tuple(jobs), worker_id)


async def sweep(store: JobStore, names: Sequence[JobName]) -> list[Recovery]:
    """Expired leases and dead workers of these names; only the recoveries that moved jobs."""
    if not names:
        return []
    found = [Recovery(LEASE_EXPIRED, tuple(await store.recover_expired(names)))]
    for worker_id in await store.dead_workers(names):
        found.append(await recover_worker(store, worker_id, names, DEAD_WORKER))
    return [r for r in found if r.jobs]
