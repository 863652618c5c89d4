"""The embedded worker of ``asyncendpoints dev``: a worker in the API's own event loop."""

from __future__ import annotations

import time

from asyncendpoints import InMemoryJobStore, JobStatus
from asyncendpoints.services import load_service
from tests.worker.apps import build_app
from tests.worker.conftest import FAST, finished, wait_for
from worker.service import embedded


def test_the_worker_service_exposes_its_embedded_runner() -> None:
    service = load_service("worker")
    assert service.extras is not None
    assert service.extras["embedded"] is embedded
    assert service.help == "run jobs from Redis"


async def test_embedded_worker_runs_jobs_on_the_in_memory_store() -> None:
    from asyncendpoints import Settings

    app, rec = build_app(Settings(**FAST), store=InMemoryJobStore())
    await app.startup()
    async with embedded(app):
        job = await app.submit("echo", {"n": 3})
        assert (await finished(app, job.id)).status is JobStatus.COMPLETED
        sync = await app.submit("sync-echo", {"n": 4})
        assert (await finished(app, sync.id)).status is JobStatus.COMPLETED
        long = await app.submit("sleep", {"seconds": 60})
        await wait_for(lambda: long.id in rec.started, what="the long job to start")
        workers = await app.store.workers()
        assert len(workers) == 1
        began = time.monotonic()
    # Leaving the context drained the worker: the long job was cut short (the embedded
    # grace is 2 s here) and put back in the queue, the worker unregistered.
    assert time.monotonic() - began < 4
    assert (await app.get(long.id)).status is JobStatus.QUEUED
    assert long.id in rec.cancelled
    assert await app.store.workers() == []
    await app.shutdown()
