"""The in-memory job store: the embedded default for ``asyncendpoints dev`` and tests.

Single process, asyncio. It keeps exactly the semantics of the Redis store (the same
conformance suite runs on both); transitions are atomic because no method awaits
between reading and writing a job.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from asyncendpoints.errors import (
    InvalidTransitionError,
    JobNotFoundError,
    QueueFullError,
    StaleLeaseError,
)
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
from asyncendpoints.lifecycle import CANCELABLE, check_transition
from asyncendpoints.types import JobId, JobName, JSONBytes, WorkerId

Clock = Callable[[], float]


@dataclass
class _Queue:
    """Everything of one job name."""

    queued: deque[JobId] = field(default_factory=deque)
    scheduled: dict[JobId, float] = field(default_factory=dict)
    leases: dict[JobId, float] = field(default_factory=dict)  # id -> expiry
    seq: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0


class InMemoryJobStore:
    """A :class:`~asyncendpoints.store.base.JobStore` in one process's memory."""

    def __init__(self, *, retention_seconds: float = 86_400.0, clock: Clock = time.time) -> None:
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._jobs: dict[JobId, Job] = {}
        self._expiry: list[tuple[float, JobId]] = []  # heap of finished jobs' expiry
        self._queues: dict[JobName, _Queue] = {}
        self._idempotency: dict[str, tuple[JobId, float]] = {}
        self._workers: dict[WorkerId, tuple[WorkerInfo, float]] = {}
        self._names: set[JobName] = set()
        self._work = asyncio.Event()

    # --- connection ------------------------------------------------------------------
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    # --- helpers -----------------------------------------------------------------------
    def _queue(self, name: JobName) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, job_id = heapq.heappop(self._expiry)
            job = self._jobs.get(job_id)
            if (
                job is not None
                and job.status.finished
                and job.completed_at is not None
                and job.completed_at + self.retention_seconds <= now
            ):
                del self._jobs[job_id]
        for key, (_, until) in list(self._idempotency.items()):
            if until <= now:
                del self._idempotency[key]

    def _finish(self, job: Job, now: float, **changes: object) -> Job:
        done = job.with_(completed_at=now, last_updated_at=now, **changes)
        self._jobs[job.id] = done
        heapq.heappush(self._expiry, (now + self.retention_seconds, job.id))
        return done

    def _current(self, lease: Lease) -> Job | None:
        job = self._jobs.get(lease.job_id)
        if (
            job is None
            or job.status is not JobStatus.IN_PROGRESS
            or job.token != lease.token
            or job.name != lease.name
        ):
            return None
        return job

    def _wake(self) -> None:
        self._work.set()

    # --- names -------------------------------------------------------------------------
    async def register_names(self, names: Sequence[JobName]) -> None:
        self._names.update(names)

    async def names(self) -> list[JobName]:
        return sorted(self._names)

    # --- create / read -----------------------------------------------------------------
    async def create(
        self,
        job: NewJob,
        *,
        max_queue_size: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        now = self._clock()
        self._expire(now)
        idem = None
        if idempotency_key is not None:
            idem = hashlib.sha256(f"{job.tenant or ''}\0{idempotency_key}".encode()).hexdigest()
            idem = f"{job.name}:{idem}"
            seen = self._idempotency.get(idem)
            if seen is not None and seen[0] in self._jobs:
                return self._jobs[seen[0]]
        queue = self._queue(job.name)
        if max_queue_size is not None and len(queue.queued) >= max_queue_size:
            raise QueueFullError(job.name, max_queue_size)
        stored = Job(
            id=job.id,
            name=job.name,
            status=JobStatus.QUEUED,
            payload=job.payload,
            created_at=now,
            last_updated_at=now,
            max_retries=job.max_retries,
            timeout=job.timeout,
            context=job.context,
            tenant=job.tenant,
        )
        self._jobs[job.id] = stored
        queue.queued.append(job.id)
        if idem is not None:
            self._idempotency[idem] = (job.id, now + self.retention_seconds)
        self._wake()
        return stored

    async def create_many(
        self, jobs: Sequence[NewJob], *, max_queue_size: int | None = None
    ) -> list[Job]:
        if max_queue_size is not None:
            wanted: dict[JobName, int] = {}
            for job in jobs:
                wanted[job.name] = wanted.get(job.name, 0) + 1
            for name, count in wanted.items():
                if len(self._queue(name).queued) + count > max_queue_size:
                    raise QueueFullError(name, max_queue_size)
        return [await self.create(job) for job in jobs]

    async def get(self, job_id: JobId) -> Job:
        self._expire(self._clock())
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    # --- claiming ----------------------------------------------------------------------
    async def claim(
        self,
        worker_id: WorkerId,
        names: Sequence[JobName],
        *,
        count: int,
        lease_seconds: float,
    ) -> list[Claim]:
        now = self._clock()
        await self.promote_due(names)
        claims: list[Claim] = []
        for name in names:
            queue = self._queue(name)
            while queue.queued and len(claims) < count:
                job_id = queue.queued.popleft()
                job = self._jobs.get(job_id)
                if job is None or job.status is not JobStatus.QUEUED:
                    continue
                queue.seq += 1
                claimed = job.with_(
                    status=JobStatus.IN_PROGRESS,
                    worker_id=worker_id,
                    token=queue.seq,
                    started_at=now,
                    last_updated_at=now,
                    progress=None,
                    progress_message=None,
                )
                self._jobs[job_id] = claimed
                queue.leases[job_id] = now + lease_seconds
                claims.append(Claim(claimed, Lease(job_id, name, queue.seq, worker_id)))
        if not claims:
            self._work.clear()
        return claims

    async def wait_for_work(self, names: Sequence[JobName], timeout: float) -> bool:
        now = self._clock()
        if any(self._queue(name).queued for name in names):
            return True
        due = [at for name in names for at in self._queue(name).scheduled.values()]
        until_due = min(due) - now if due else None
        if until_due is not None and until_due <= timeout:
            timeout, woken_by_due = max(0.0, until_due), True
        else:
            woken_by_due = False
        self._work.clear()
        try:
            await asyncio.wait_for(self._work.wait(), timeout)
        except TimeoutError:
            return woken_by_due  # a Scheduled job fell due: that is work too
        return True

    async def wait_and_claim(
        self,
        worker_id: WorkerId,
        names: Sequence[JobName],
        *,
        count: int,
        lease_seconds: float,
        timeout: float,
    ) -> list[Claim]:
        await self.wait_for_work(names, timeout)
        return await self.claim(worker_id, names, count=count, lease_seconds=lease_seconds)

    async def heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> list[Lease]:
        now = self._clock()
        lost: list[Lease] = []
        for lease in leases:
            if self._current(lease) is None:
                lost.append(lease)
            else:
                self._queue(lease.name).leases[lease.job_id] = now + lease_seconds
        return lost

    # --- finishing -----------------------------------------------------------------------
    async def complete(self, lease: Lease, result: JSONBytes) -> None:
        if not (await self.complete_many([(lease, result)]))[0]:
            raise StaleLeaseError(lease.job_id, lease.token)

    async def complete_many(self, items: Sequence[tuple[Lease, JSONBytes]]) -> list[bool]:
        now = self._clock()
        done: list[bool] = []
        for lease, result in items:
            job = self._current(lease)
            if job is None:
                done.append(False)
                continue
            queue = self._queue(lease.name)
            queue.leases.pop(lease.job_id, None)
            queue.completed += 1
            self._finish(job, now, status=JobStatus.COMPLETED, result=result, error=None)
            done.append(True)
        return done

    async def fail(self, lease: Lease, error: JobError, *, retry_delay: float | None) -> JobStatus:
        now = self._clock()
        job = self._current(lease)
        if job is None:
            raise StaleLeaseError(lease.job_id, lease.token)
        queue = self._queue(lease.name)
        queue.leases.pop(lease.job_id, None)
        if retry_delay is None or job.retry_count >= job.max_retries:
            queue.failed += 1
            self._finish(job, now, status=JobStatus.FAILED, error=error)
            return JobStatus.FAILED
        until = now + max(0.0, retry_delay)
        self._jobs[job.id] = job.with_(
            status=JobStatus.SCHEDULED,
            retry_count=job.retry_count + 1,
            retry_delay_until=until,
            error=error,
            last_updated_at=now,
        )
        queue.scheduled[job.id] = until
        self._wake()
        return JobStatus.SCHEDULED

    async def release(self, leases: Sequence[Lease]) -> int:
        now = self._clock()
        released = 0
        for lease in leases:
            job = self._current(lease)
            if job is None:
                continue
            queue = self._queue(lease.name)
            queue.leases.pop(lease.job_id, None)
            queue.queued.appendleft(job.id)
            self._jobs[job.id] = job.with_(
                status=JobStatus.QUEUED, worker_id=None, last_updated_at=now
            )
            released += 1
        if released:
            self._wake()
        return released

    async def cancel(self, job_id: JobId) -> Job:
        now = self._clock()
        job = await self.get(job_id)
        if job.status not in CANCELABLE:
            raise InvalidTransitionError(job_id, job.status.value, JobStatus.CANCELED.value)
        queue = self._queue(job.name)
        if job.status is JobStatus.QUEUED:
            try:
                queue.queued.remove(job_id)
            except ValueError:
                pass
        queue.scheduled.pop(job_id, None)
        queue.leases.pop(job_id, None)
        queue.canceled += 1
        return self._finish(job, now, status=JobStatus.CANCELED)

    async def report_progress(self, lease: Lease, fraction: float, message: str | None) -> bool:
        job = self._current(lease)
        if job is None:
            return False
        self._jobs[job.id] = job.with_(
            progress=min(1.0, max(0.0, fraction)),
            progress_message=message,
            last_updated_at=self._clock(),
        )
        return True

    # --- time-driven moves ----------------------------------------------------------------
    async def promote_due(self, names: Sequence[JobName]) -> int:
        now = self._clock()
        moved = 0
        for name in names:
            queue = self._queue(name)
            for job_id, at in sorted(queue.scheduled.items(), key=lambda item: item[1]):
                if at > now:
                    break
                del queue.scheduled[job_id]
                job = self._jobs.get(job_id)
                if job is None or job.status is not JobStatus.SCHEDULED:
                    continue
                check_transition(job_id, job.status, JobStatus.QUEUED)
                self._jobs[job_id] = job.with_(status=JobStatus.QUEUED, last_updated_at=now)
                queue.queued.append(job_id)
                moved += 1
        if moved:
            self._wake()
        return moved

    def _recover(self, job: Job, now: float) -> None:
        queue = self._queue(job.name)
        queue.leases.pop(job.id, None)
        if job.retry_count >= job.max_retries:
            queue.failed += 1
            lost = JobError("WorkerLost", f"worker {job.worker_id} was lost; retries exhausted")
            self._finish(job, now, status=JobStatus.FAILED, error=lost)
            return
        self._jobs[job.id] = job.with_(
            status=JobStatus.QUEUED,
            retry_count=job.retry_count + 1,
            worker_id=None,
            last_updated_at=now,
        )
        queue.queued.append(job.id)
        self._wake()

    async def recover_expired(self, names: Sequence[JobName]) -> list[JobId]:
        now = self._clock()
        recovered: list[JobId] = []
        for name in names:
            for job_id, expiry in list(self._queue(name).leases.items()):
                job = self._jobs.get(job_id)
                if expiry <= now and job is not None:
                    self._recover(job, now)
                    recovered.append(job_id)
        return recovered

    async def recover_worker(self, worker_id: WorkerId, names: Sequence[JobName]) -> list[JobId]:
        now = self._clock()
        recovered: list[JobId] = []
        for name in names:
            for job_id in list(self._queue(name).leases):
                job = self._jobs.get(job_id)
                if job is not None and job.worker_id == worker_id:
                    self._recover(job, now)
                    recovered.append(job_id)
        return recovered

    # --- numbers and workers ----------------------------------------------------------------
    async def stats(self, name: JobName) -> QueueStats:
        queue = self._queue(name)
        return QueueStats(
            name=name,
            queued=len(queue.queued),
            scheduled=len(queue.scheduled),
            in_progress=len(queue.leases),
            completed=queue.completed,
            failed=queue.failed,
            canceled=queue.canceled,
        )

    async def register_worker(self, info: WorkerInfo, ttl: float) -> None:
        now = self._clock()
        self._workers[info.worker_id] = (replace(info, last_seen=now), now + ttl)

    async def unregister_worker(self, worker_id: WorkerId) -> None:
        self._workers.pop(worker_id, None)

    async def workers(self) -> list[WorkerInfo]:
        now = self._clock()
        return [info for info, until in self._workers.values() if until > now]

    async def dead_workers(self, names: Sequence[JobName]) -> list[WorkerId]:
        live = {info.worker_id for info in await self.workers()}
        holders = {
            job.worker_id
            for name in names
            for job_id in self._queue(name).leases
            if (job := self._jobs.get(job_id)) is not None and job.worker_id is not None
        }
        return sorted(holders - live)
