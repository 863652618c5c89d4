"""The job store contract: one Protocol, two implementations, one conformance suite.

Every method that changes a job applies one transition of
:mod:`asyncendpoints.lifecycle` atomically (Redis: one Lua script touching the keys of
one job name's hash slot). Writes made by a worker carry its :class:`Lease`; a lease
whose fencing token is no longer current changes nothing.

Semantics every implementation keeps (the conformance suite in
``tests/core/store/`` checks each line):

* ``create``: Queued, appended to its name's FIFO queue. When the name's queue already
  holds ``max_queue_size`` jobs: :class:`QueueFullError`, nothing stored. With an
  ``idempotency_key``, a second create with the same (tenant, key) returns the first job
  and stores nothing new (the key lives as long as the retention).
* ``claim``: pops up to ``count`` Queued jobs (oldest first) of the given names, each
  to exactly one caller; sets InProgress, ``worker_id``, ``started_at``, a new fencing
  ``token`` (strictly greater than any earlier token of that job) and a lease that
  expires ``lease_seconds`` from now. Before claiming it promotes due Scheduled jobs of
  those names. Returns ``[]`` at once when nothing is queued.
* ``wait_for_work``: blocks (no polling loop on the client) until a job of one of the
  names may be claimable or ``timeout`` passes; True when woken by work. Spurious
  wake-ups are allowed; a missed wake-up is not (a job created while a waiter blocks
  wakes it). Also returns when a Scheduled job of those names falls due.
* ``wait_and_claim``: ``wait_for_work`` and ``claim`` as one step (Redis pipelines the
  claim behind the blocking wait, so a woken worker holds its jobs at once).
* ``heartbeat``: extends the leases still current to ``lease_seconds`` from now and
  returns the leases that are not current any more (canceled, recovered, released),
  so the worker can stop those jobs.
* ``complete`` / ``complete_many``: InProgress -> Completed with the result, only with
  the current token; returns False (and changes nothing) for a stale lease.
  ``complete`` raises :class:`StaleLeaseError` instead of returning False.
  Finished jobs expire ``retention_seconds`` after they finish.
* ``fail``: with ``retry_delay`` None (a permanent error) or retries exhausted
  (``retry_count >= max_retries``) -> Failed; else -> Scheduled with ``retry_count + 1``
  and ``retry_delay_until = now + retry_delay``. Returns the new status. Stale lease:
  :class:`StaleLeaseError`.
* ``release``: InProgress -> Queued (front of the queue, so it runs next) without
  counting an attempt; stale leases are ignored. Returns how many were released.
* ``cancel``: Queued / Scheduled / InProgress -> Canceled (an InProgress job's lease
  stops being current). A finished job: :class:`InvalidTransitionError`. Unknown id:
  :class:`JobNotFoundError`.
* ``recover_expired`` / ``recover_worker``: InProgress jobs whose lease expired, or
  whose worker is ``worker_id``, go back to Queued counting the attempt
  (``retry_count + 1``), or to Failed (error type ``WorkerLost``) when
  ``retry_count >= max_retries``. Returns the recovered job ids (Queued or Failed).
* ``stats``: counts of Queued, Scheduled, InProgress now; counters of Completed,
  Failed, Canceled since the store began.
* Workers register with a TTL; ``workers()`` lists the live ones, ``dead_workers()``
  the ones whose registration expired but who still hold leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from asyncendpoints.job import (
    Claim,
    Job,
    JobError,
    JobStatus,
    Lease,
    NewJob,
    QueueStats,
    WorkerInfo,
)
from asyncendpoints.types import JobId, JobName, JSONBytes, WorkerId


@runtime_checkable
class JobStore(Protocol):
    """Where jobs live. See the module docstring for the exact semantics."""

    retention_seconds: float

    async def open(self) -> None:
        """Connect (and load scripts). Idempotent."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers."""

    async def register_names(self, names: Sequence[JobName]) -> None:
        """Record job names so that ``names()`` lists them (the app does it at start)."""

    async def names(self) -> list[JobName]: ...

    async def create(
        self,
        job: NewJob,
        *,
        max_queue_size: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job: ...

    async def create_many(
        self, jobs: Sequence[NewJob], *, max_queue_size: int | None = None
    ) -> list[Job]:
        """Create in one round trip; all-or-nothing per name (QueueFullError if over)."""

    async def get(self, job_id: JobId) -> Job:
        """The job; :class:`JobNotFoundError` when unknown or expired."""

    async def claim(
        self,
        worker_id: WorkerId,
        names: Sequence[JobName],
        *,
        count: int,
        lease_seconds: float,
    ) -> list[Claim]: ...

    async def wait_for_work(self, names: Sequence[JobName], timeout: float) -> bool: ...

    async def wait_and_claim(
        self,
        worker_id: WorkerId,
        names: Sequence[JobName],
        *,
        count: int,
        lease_seconds: float,
        timeout: float,
    ) -> list[Claim]:
        """``wait_for_work`` then ``claim``, with no round trip between the wake-up and
        the claim on Redis (an idle worker's path). May return fewer than ``count`` even
        when more is queued (the caller claims again); never more."""

    async def heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> list[Lease]: ...

    async def complete(self, lease: Lease, result: JSONBytes) -> None: ...

    async def complete_many(self, items: Sequence[tuple[Lease, JSONBytes]]) -> list[bool]: ...

    async def fail(
        self, lease: Lease, error: JobError, *, retry_delay: float | None
    ) -> JobStatus: ...

    async def release(self, leases: Sequence[Lease]) -> int: ...

    async def cancel(self, job_id: JobId) -> Job: ...

    async def report_progress(self, lease: Lease, fraction: float, message: str | None) -> bool:
        """Store progress on an InProgress job; False for a stale lease."""

    async def promote_due(self, names: Sequence[JobName]) -> int:
        """Scheduled jobs whose delay passed -> Queued. Returns how many."""

    async def recover_expired(self, names: Sequence[JobName]) -> list[JobId]: ...

    async def recover_worker(
        self, worker_id: WorkerId, names: Sequence[JobName]
    ) -> list[JobId]: ...

    async def stats(self, name: JobName) -> QueueStats: ...

    async def register_worker(self, info: WorkerInfo, ttl: float) -> None:
        """Register or refresh a worker; it counts as live for ``ttl`` seconds."""

    async def unregister_worker(self, worker_id: WorkerId) -> None: ...

    async def workers(self) -> list[WorkerInfo]:
        """The live workers."""

    async def dead_workers(self, names: Sequence[JobName]) -> list[WorkerId]:
        """Workers that hold leases on these names but whose registration expired."""


__all__ = ["JobStore"]
