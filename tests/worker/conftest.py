"""Fixtures for the worker tests: apps on either store, running workers, helpers.

* ``store_kind``: ``"memory"`` and ``"redis"`` (the latter marked ``redis``) for the tests
  that run on both stores.
* ``make_settings(**overrides)``: settings with fast timings (heartbeat 0.2 s, lease 2 s,
  recovery 0.3 s, retries 10-20 ms apart, health port off).
* ``make_app(settings=None)`` -> ``(app, recorder)`` on the ``store_kind`` store (a Redis
  store gets the test's own key prefix); closed after the test.
* ``start_worker(app, **options)`` -> a started :class:`Worker`; drained after the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from asyncendpoints import AsyncEndpoints, InMemoryJobStore, Job, JobStatus, Settings
from tests.worker.apps import Recorder, build_app
from worker.runtime import Worker

FAST: dict[str, Any] = {
    "heartbeat_seconds": 0.2,
    "lease_seconds": 2.0,
    "recovery_seconds": 0.3,
    "retry_base_seconds": 0.01,
    "retry_cap_seconds": 0.02,
    "worker_health_port": 0,
    "shutdown_grace_seconds": 2.0,
    "concurrency": 8,
    "batch_size": 50,
    "log_format": "json",
}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(**{**FAST, **overrides})

    return make


@pytest.fixture
async def make_app(
    store_kind: str,
    request: pytest.FixtureRequest,
    key_prefix: str,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., tuple[AsyncEndpoints, Recorder]]]:
    apps: list[AsyncEndpoints] = []

    def make(settings: Settings | None = None) -> tuple[AsyncEndpoints, Recorder]:
        settings = settings or make_settings()
        if store_kind == "redis":
            from asyncendpoints.store.redis import RedisJobStore

            url = request.getfixturevalue("redis_url")
            store: Any = RedisJobStore(url, prefix=key_prefix)
        else:
            store = InMemoryJobStore()
        app, rec = build_app(settings, store=store)
        apps.append(app)
        return app, rec

    yield make
    for app in apps:
        await app.shutdown()


@pytest.fixture
async def start_worker() -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    workers: list[Worker] = []

    async def start(app: AsyncEndpoints, **options: Any) -> Worker:
        options.setdefault("health_port", 0)
        worker = Worker(app, **options)
        workers.append(worker)
        await worker.start()
        return worker

    yield start
    for worker in workers:
        worker.force_stop()
        await worker.drain()


async def wait_for(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 5.0,
    interval: float = 0.01,
    what: str = "condition",
) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def finished(app: AsyncEndpoints, job_id: str, timeout: float = 5.0) -> Job:
    """The job once it finished; fails the test if it does not within ``timeout``."""
    job = await app.wait(job_id, timeout)
    if not job.status.finished:
        pytest.fail(f"job {job_id} still {job.status} after {timeout} s")
    return job


async def status_is(app: AsyncEndpoints, job_id: str, status: JobStatus) -> bool:
    return (await app.get(job_id)).status is status
