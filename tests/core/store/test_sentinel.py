"""The Redis store behind Sentinel: a real primary, a real replica, a real Sentinel.

``redis+sentinel://host:port/<primary name>/<db>`` makes the store ask the Sentinel where
the primary is; after a failover it writes to the new primary, and what was replicated
before is still there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from asyncendpoints.errors import ConfigurationError, StoreUnavailableError
from asyncendpoints.job import JobStatus, NewJob
from asyncendpoints.store.redis import RedisJobStore
from asyncendpoints.store.redis_io import sentinel_client
from tests.support.redis_server import RedisSentinel, RedisServer

pytestmark = [pytest.mark.redis]
NAME = "report"


@pytest.fixture
def primary() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def replica(primary: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(replica_of=primary.port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sentinel(primary: RedisServer) -> Iterator[RedisSentinel]:
    watcher = RedisSentinel(primary.port)
    watcher.start()
    yield watcher
    watcher.stop()


@pytest.fixture
async def store(sentinel: RedisSentinel, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    made = RedisJobStore(sentinel.url(), prefix=key_prefix, timeout=2.0)
    await made.open()
    yield made
    await made.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_the_store_finds_its_primary_through_the_sentinel(
    store: RedisJobStore, primary: RedisServer
) -> None:
    [job] = await store.create_many([NewJob.build(NAME, b'{"month": "2026-11"}')])
    [claim] = await store.claim("w1", [NAME], count=1, lease_seconds=30)
    assert claim.job.id == job.id
    await store.complete(claim.lease, b'{"ok": true}')
    assert (await store.get(job.id)).status is JobStatus.COMPLETED
    async with aioredis.Redis.from_url(primary.url) as direct:
        assert await direct.exists(store.keys.job(job.id)) == 1  # written on the primary


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_the_store_follows_a_failover_and_keeps_what_was_replicated(
    store: RedisJobStore, primary: RedisServer, replica: RedisServer, sentinel: RedisSentinel
) -> None:
    async with aioredis.Redis.from_url(f"redis://127.0.0.1:{sentinel.port}") as watcher:

        async def replica_known() -> bool:
            replicas = await watcher.sentinel_slaves(sentinel.name)
            return any(
                r["port"] == replica.port and r.get("is_disconnected") is False for r in replicas
            )

        await until(replica_known, "the Sentinel to find the replica")
        [before] = await store.create_many([NewJob.build(NAME, b"{}")])
        async with aioredis.Redis.from_url(primary.url) as direct:
            assert await direct.execute_command("WAIT", 1, 5000) == 1  # on the replica too
        await watcher.execute_command("SENTINEL", "FAILOVER", sentinel.name)

        async def promoted() -> bool:
            _, port = await watcher.sentinel_get_master_addr_by_name(sentinel.name)
            return int(port) == replica.port

        await until(promoted, "the Sentinel to promote the replica")

    async with aioredis.Redis.from_url(primary.url) as old:

        async def demoted() -> bool:
            role = await old.execute_command("ROLE")
            return bool(role[0] in (b"slave", "slave"))

        # Until the Sentinel turns the old primary into a replica it still takes writes
        # (Redis replicates asynchronously: what it takes then is lost when it resyncs).
        await until(demoted, "the Sentinel to turn the old primary into a replica")

    after: list[str] = []

    async def create_after() -> bool:
        try:
            [job] = await store.create_many([NewJob.build(NAME, b"{}")])
        except StoreUnavailableError:
            return False  # the demoted primary answered READONLY: the next try reconnects
        after.append(job.id)
        return True

    await until(create_after, "a job stored after the failover")
    assert (await store.get(before.id)).status is JobStatus.QUEUED  # replicated, not lost
    async with aioredis.Redis.from_url(replica.url) as new_primary:
        assert await new_primary.exists(store.keys.job(after[0])) == 1
    claims = await store.claim("w1", [NAME], count=10, lease_seconds=30)
    assert {c.job.id for c in claims} == {before.id, after[0]}


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379",  # no primary name
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1:26379/ae/zero",  # the db is a number
    ],
)
def test_a_sentinel_url_without_a_primary_name_or_with_a_bad_db_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        sentinel_client(url, 1.0, 4)
