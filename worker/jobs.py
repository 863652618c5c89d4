"""Running claimed jobs: one task per job, its outcome to the store.

:class:`JobRunner` owns the worker's slots (the running tasks) and the leases it holds.
Per job, the hot path is kept short: one task, a shared blank :class:`JobContext` when
the handler takes none, no logging above DEBUG, metrics as plain increments, and the
result handed to the :class:`CompletionBatcher` (the slot frees at once; the lease is
held, and heartbeated, until the store acknowledges the result).

Outcomes: a result is completed through the batcher; an exception goes through
:meth:`JobManager.record_failure` (Scheduled for a retry with backoff, or Failed when
permanent or out of retries); a timeout (``asyncio.timeout``) is a
:class:`JobTimeoutError` (retried); a lease the store reports lost (canceled, or
recovered after this worker looked dead) cancels the task at once and nothing is
written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from time import perf_counter
from typing import Any

from asyncendpoints.context import JobContext
from asyncendpoints.errors import (
    AsyncEndpointsError,
    ConfigurationError,
    JobTimeoutError,
    StaleLeaseError,
)
from asyncendpoints.handlers import Endpoint
from asyncendpoints.job import Claim, Job, JobStatus, Lease
from asyncendpoints.manager import JobManager
from asyncendpoints.store.base import JobStore
from asyncendpoints.types import JobId, JobName, JSONBytes
from worker.completions import CompletionBatcher, Item
from worker.metrics import COMPLETED, FAILED, LOST, RETRIED, WorkerMetrics
from worker.progress import ProgressReporter

log = logging.getLogger("asyncendpoints.worker")


class JobRunner:
    """The running jobs of one worker, and the leases it holds."""

    def __init__(
        self,
        *,
        store: JobStore,
        manager: JobManager,
        endpoints: Mapping[JobName, Endpoint],
        metrics: WorkerMetrics,
        max_batch: int,
    ) -> None:
        self.store = store
        self.manager = manager
        self.endpoints = dict(endpoints)
        self.metrics = metrics
        self.executor: Executor | None = None
        self.tasks: dict[JobId, tuple[asyncio.Task[None], Lease]] = {}
        """Running jobs: one slot each."""
        self.leases: dict[JobId, Lease] = {}
        """Every lease held: running jobs, and results not yet acknowledged."""
        self.completions = CompletionBatcher(
            store, max_batch=max_batch, on_result=self._on_stored, on_error=self.store_error
        )
        self.slot_wanted = False
        """Set by the claim loop while it waits for :attr:`slot_freed`."""
        self.slot_freed = asyncio.Event()
        self.debug = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._blank = {name: JobContext(job_id="", name=name) for name in self.endpoints}

    def store_error(self, exc: BaseException) -> None:
        self.metrics.store_errors += 1

    def _wake_claimer(self) -> None:
        if self.slot_wanted:
            self.slot_freed.set()

    # --- starting -------------------------------------------------------------------------
    def launch(self, claim: Claim) -> None:
        """Start one claimed job (in a task of its own)."""
        job = claim.job
        lease = claim.lease
        previous = self.tasks.get(job.id)
        if previous is not None:  # re-claimed while an old attempt still runs here
            previous[0].cancel()
        endpoint = self.endpoints.get(job.name)
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
        task = loop.create_task(self._execute(job, lease, endpoint))
        self.tasks[job.id] = (task, lease)
        self.leases[job.id] = lease

    async def _execute(self, job: Job, lease: Lease, endpoint: Endpoint | None) -> None:
        reporter: ProgressReporter | None = None
        began = perf_counter()
        try:
            try:
                if endpoint is None:
                    raise ConfigurationError(f"this worker has no handler for {job.name!r}")
                if endpoint.context_param is None:
                    ctx = self._blank[job.name]
                else:
                    reporter = ProgressReporter(self.store, lease, self.lost)
                    ctx = JobContext.for_job(job, reporter)
                if self.debug:
                    log.debug("job started", extra={"job_id": job.id, "job_name": job.name})
                if job.timeout is None:
                    result = await endpoint.run(job.payload, ctx, self.executor)
                else:
                    result = await self._run_with_timeout(endpoint, job, ctx)
            except Exception as exc:
                self.metrics.observe_duration(job.name, perf_counter() - began)
                await self._record_failure(job, lease, exc)
                return
            self.metrics.observe_duration(job.name, perf_counter() - began)
            self.completions.add(lease, result)
            if self.debug:
                log.debug("job finished", extra={"job_id": job.id, "job_name": job.name})
        finally:
            if reporter is not None:
                reporter.close()
            entry = self.tasks.get(job.id)
            if entry is not None and entry[1] is lease:
                del self.tasks[job.id]
            if self.slot_wanted:
                self.slot_freed.set()

    async def _run_with_timeout(self, endpoint: Endpoint, job: Job, ctx: JobContext) -> JSONBytes:
        seconds = job.timeout
        assert seconds is not None
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await endpoint.run(job.payload, ctx, self.executor)
        except TimeoutError:
            if scope.expired():
                message = f"the job ran longer than its {seconds:g} s timeout"
                raise JobTimeoutError(message) from None
            raise

    # --- outcomes -----------------------------------------------------------------------------
    async def _record_failure(self, job: Job, lease: Lease, exc: Exception) -> None:
        fields: dict[str, Any] = {
            "job_id": job.id,
            "job_name": job.name,
            "attempt": job.retry_count + 1,
            "error_type": type(exc).__name__,
            "error": str(exc),
        }
        try:
            status = await self.manager.record_failure(job, lease, exc)
        except StaleLeaseError:
            self.forget(lease)
            self.metrics.count(job.name, LOST)
            log.info("job failed, but its lease is no longer current: dropped", extra=fields)
            return
        except Exception as store_exc:
            self.forget(lease)  # stop extending it: the lease expires, the job runs again
            self.metrics.store_errors += 1
            log.warning(
                "job failed and the failure could not be stored; it runs again once its "
                "lease expires: %s",
                store_exc,
                extra=fields,
            )
            return
        self.forget(lease)
        if status is JobStatus.FAILED:
            self.metrics.count(job.name, FAILED)
            unexpected = not isinstance(exc, AsyncEndpointsError)
            log.warning("job failed", extra=fields, exc_info=exc if unexpected else None)
        else:
            self.metrics.count(job.name, RETRIED)
            log.info("job failed; retry scheduled", extra=fields)

    def forget(self, lease: Lease) -> None:
        """Stop holding (and heartbeating) ``lease``."""
        if self.leases.get(lease.job_id) is lease:
            del self.leases[lease.job_id]

    def _on_stored(self, batch: Sequence[Item], done: Sequence[bool]) -> None:
        leases = self.leases
        completed: dict[JobName, int] = {}
        for (lease, _), ok in zip(batch, done, strict=True):
            if leases.get(lease.job_id) is lease:
                del leases[lease.job_id]
            if ok:
                completed[lease.name] = completed.get(lease.name, 0) + 1
            else:
                self.metrics.count(lease.name, LOST)
                log.info(
                    "result dropped: the job's lease is no longer current "
                    "(canceled, or recovered by another worker)",
                    extra={"job_id": lease.job_id, "job_name": lease.name},
                )
        for name, n in completed.items():
            self.metrics.count(name, COMPLETED, n)
        self._wake_claimer()

    def lost(self, lease: Lease) -> None:
        """The store says this lease is not current: stop the job if it still runs."""
        entry = self.tasks.get(lease.job_id)
        if entry is None or entry[1].token != lease.token:
            return  # finished meanwhile; its result (if any) is refused by fencing
        task, held = entry
        self.forget(held)
        self.metrics.count(lease.name, LOST)
        log.info(
            "job stopped: its lease is no longer current (canceled, or recovered elsewhere)",
            extra={"job_id": lease.job_id, "job_name": lease.name},
        )
        task.cancel()

    # --- shutdown ---------------------------------------------------------------------------
    async def cancel_running(self, timeout: float) -> int:
        """Cancel every running job and wait (up to ``timeout``) for them to unwind."""
        cut = [task for task, _ in self.tasks.values()]
        for task in cut:
            task.cancel()
        if cut:
            await asyncio.wait(cut, timeout=timeout)
        return len(cut)


__all__ = ["JobRunner"]
