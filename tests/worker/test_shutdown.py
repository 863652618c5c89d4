"""Graceful shutdown in-process: stop claiming, finish within the grace, release the rest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from asyncendpoints import AsyncEndpoints, JobStatus, Settings
from tests.worker.apps import Recorder
from tests.worker.conftest import status_is, wait_for
from worker.metrics import COMPLETED, RELEASED
from worker.runtime import Worker

MakeApp = Callable[..., tuple[AsyncEndpoints, Recorder]]
StartWorker = Callable[..., Awaitable[Worker]]


async def test_stop_lets_running_jobs_finish_and_claims_nothing_more(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    worker = await start_worker(app, grace_seconds=5)
    job = await app.submit("sleep", {"seconds": 0.3})
    await wait_for(lambda: job.id in rec.started, what="the handler to start")
    began = time.monotonic()
    worker.stop()
    assert (await worker.ready())[0] is False
    late = await app.submit("echo", {})
    await worker.drain()
    assert time.monotonic() - began < 2
    assert (await app.get(job.id)).status is JobStatus.COMPLETED
    assert job.id not in rec.cancelled
    assert await status_is(app, late.id, JobStatus.QUEUED)  # submitted after stop: untouched
    assert worker.metrics.outcome(COMPLETED) == 1


async def test_jobs_still_running_after_the_grace_are_released(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    worker = await start_worker(app, grace_seconds=0.3)
    jobs = await app.submit_many("sleep", [{"seconds": 30}] * 3)
    await wait_for(lambda: len(rec.started) == 3, what="three handlers to start")
    began = time.monotonic()
    worker.stop()
    await worker.drain()
    assert 0.3 <= time.monotonic() - began < 2.5
    for job in jobs:
        current = await app.get(job.id)
        assert current.status is JobStatus.QUEUED  # back in the queue ...
        assert current.retry_count == 0  # ... without counting an attempt
        assert job.id in rec.cancelled  # the handler was cancelled
    assert worker.metrics.outcome(RELEASED) == 3
    assert worker.worker_id not in {w.worker_id for w in await app.store.workers()}
    # A released job runs next on another worker.
    rec.started.clear()
    await start_worker(app, worker_id="next")
    await wait_for(lambda: len(rec.started) == 3, what="the released jobs to run again")


async def test_second_signal_skips_the_grace(make_app: MakeApp, start_worker: StartWorker) -> None:
    app, rec = make_app()
    worker = await start_worker(app, grace_seconds=30)
    job = await app.submit("sleep", {"seconds": 30})
    await wait_for(lambda: job.id in rec.started, what="the handler to start")
    began = time.monotonic()
    worker.stop()
    drain = asyncio.ensure_future(worker.drain())
    await asyncio.sleep(0.2)
    assert not drain.done()  # waiting for the job within the 30 s grace
    worker.force_stop()
    await asyncio.wait_for(drain, 3)
    assert time.monotonic() - began < 3
    assert (await app.get(job.id)).status is JobStatus.QUEUED
    assert job.id in rec.cancelled


async def test_pending_results_are_stored_before_exit(
    make_app: MakeApp, start_worker: StartWorker, make_settings: Callable[..., Settings]
) -> None:
    app, _ = make_app(make_settings(concurrency=100, batch_size=100))
    worker = await start_worker(app, names=["echo"])
    jobs = await app.submit_many("echo", [{"n": i} for i in range(300)])
    await wait_for(lambda: worker.metrics.claimed > 0, what="a first claim")
    worker.stop()
    await worker.drain()
    statuses = {(await app.get(job.id)).status for job in jobs}
    # Every job claimed was completed (none left InProgress); the rest wait in the queue.
    assert statuses <= {JobStatus.COMPLETED, JobStatus.QUEUED}
    assert JobStatus.COMPLETED in statuses
    assert worker.metrics.outcome(COMPLETED) == worker.metrics.claimed
