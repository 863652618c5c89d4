"""The job manager: creates jobs and records their outcomes (retries, backoff, permanence).

It sits between the callers (the HTTP layer, ``app.submit``, the worker) and the
store, and holds the policy: default retries and timeouts, the queue-size limit, and
the backoff between attempts. The store holds the state and applies it atomically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from asyncendpoints.backoff import Backoff
from asyncendpoints.errors import JobCanceledError, PayloadError, PermanentError
from asyncendpoints.job import HttpContext, Job, JobError, JobStatus, Lease, NewJob
from asyncendpoints.settings import Settings
from asyncendpoints.store.base import JobStore
from asyncendpoints.types import JobId, JobName, JSONBytes

PERMANENT = (PermanentError, PayloadError, JobCanceledError)
"""Errors that fail a job at once, whatever retries remain."""


class JobManager:
    """Policy over a :class:`JobStore`."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.backoff = Backoff(settings.retry_base_seconds, settings.retry_cap_seconds)

    def new_job(
        self,
        name: JobName,
        payload: JSONBytes,
        *,
        max_retries: int | None = None,
        timeout: float | None = None,
        context: HttpContext | None = None,
        tenant: str | None = None,
    ) -> NewJob:
        return NewJob.build(
            name,
            payload,
            max_retries=self.settings.max_retries if max_retries is None else max_retries,
            timeout=self.settings.job_timeout if timeout is None else timeout,
            context=context,
            tenant=tenant,
        )

    async def create(self, job: NewJob, *, idempotency_key: str | None = None) -> Job:
        return await self.store.create(
            job, max_queue_size=self.settings.max_queue_size, idempotency_key=idempotency_key
        )

    async def create_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        return await self.store.create_many(jobs, max_queue_size=self.settings.max_queue_size)

    async def get(self, job_id: JobId) -> Job:
        return await self.store.get(job_id)

    async def cancel(self, job_id: JobId) -> Job:
        return await self.store.cancel(job_id)

    async def wait_finished(self, job_id: JobId, timeout: float) -> Job:
        """The job once finished, or as it is when ``timeout`` passes (a long poll).

        Polls the store with a growing interval (10 ms to 250 ms): waiting clients cost
        a read each, and finishing a job costs nothing extra.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = 0.01
        while True:
            job = await self.store.get(job_id)
            remaining = deadline - loop.time()
            if job.status.finished or remaining <= 0:
                return job
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 0.25)

    def retry_delay(self, job: Job, exc: BaseException) -> float | None:
        """Seconds before the next attempt, or None when the error is permanent."""
        if isinstance(exc, PERMANENT):
            return None
        return self.backoff.delay(job.retry_count)

    async def record_failure(self, job: Job, lease: Lease, exc: BaseException) -> JobStatus:
        """Scheduled for a retry, or Failed (permanent error or retries exhausted)."""
        return await self.store.fail(
            lease, JobError.from_exception(exc), retry_delay=self.retry_delay(job, exc)
        )
