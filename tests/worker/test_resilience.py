"""The worker against a Redis that goes away: it backs off, then carries on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from asyncendpoints import AsyncEndpoints, JobStatus
from tests.support.redis_server import RedisServer
from tests.worker.apps import Recorder
from tests.worker.conftest import finished, wait_for
from worker.runtime import Worker


@pytest.mark.slow
@pytest.mark.parametrize(
    "store_kind", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)
async def test_worker_survives_a_redis_crash_and_restart(
    redis_server: RedisServer,
    make_app: Callable[..., tuple[AsyncEndpoints, Recorder]],
    start_worker: Callable[..., Awaitable[Worker]],
) -> None:
    app, _ = make_app()
    worker = await start_worker(app, names=["echo"])
    first = await app.submit("echo", {"n": 1})
    assert (await finished(app, first.id)).status is JobStatus.COMPLETED
    redis_server.kill()
    await wait_for(lambda: worker.metrics.store_errors > 0, what="the worker to notice")
    assert (await worker.ready())[0] is False
    await asyncio.sleep(1.0)  # backing off, not crashing
    assert (await worker.live())[0] is True
    redis_server.start()  # empty: no persistence
    job = await app.submit("echo", {"n": 2})
    done = await finished(app, job.id, timeout=10)
    assert done.status is JobStatus.COMPLETED
    assert (await worker.ready())[0] is True
