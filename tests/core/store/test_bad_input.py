"""Bad ids, odd bytes, wrong tokens, and a Redis that is down, silent or restarted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.exceptions

from asyncendpoints.errors import JobNotFoundError, StaleLeaseError, StoreUnavailableError
from asyncendpoints.job import JobError, JobStatus, Lease, NewJob
from asyncendpoints.store.base import JobStore
from asyncendpoints.store.redis import RedisJobStore
from tests.core.store.conftest import NAME, OTHER, delete_prefix
from tests.support.redis_server import RedisServer, free_port

MALFORMED = ["", "nope", "../../etc/passwd", "*", "ae:{x}:job:1", "deb1f89a-short", "x" * 300]


@pytest.mark.parametrize("job_id", MALFORMED)
async def test_malformed_ids_are_not_found(store: JobStore, job_id: str) -> None:
    with pytest.raises(JobNotFoundError):
        await store.get(job_id)
    with pytest.raises(JobNotFoundError):
        await store.cancel(job_id)


async def test_unknown_well_formed_id_is_not_found(store: JobStore) -> None:
    unknown = NewJob.build(NAME, b"{}").id
    with pytest.raises(JobNotFoundError):
        await store.get(unknown)
    with pytest.raises(JobNotFoundError):
        await store.cancel(unknown)


async def test_payload_and_result_bytes_round_trip_exactly(store: JobStore) -> None:
    payload = bytes(range(256)) + "ünïcødé ✓".encode() + b"\x00\r\n"
    result = b"\xff\xfe\x00" + payload[::-1]
    job = await store.create(NewJob.build(NAME, payload))
    assert (await store.get(job.id)).payload == payload
    [claimed] = await store.claim("w", [NAME], count=1, lease_seconds=30)
    assert claimed.job.payload == payload
    await store.complete(claimed.lease, result)
    assert (await store.get(job.id)).result == result


async def test_wrong_tokens_and_forged_leases_are_stale(store: JobStore) -> None:
    job = await store.create(NewJob.build(NAME, b"{}"))
    [claimed] = await store.claim("w", [NAME], count=1, lease_seconds=30)
    token = claimed.lease.token
    wrong = Lease(job.id, NAME, token + 1, "w")
    older = Lease(job.id, NAME, token - 1, "w")
    malformed = Lease("not-an-id", NAME, token, "w")
    for lease in (wrong, older, malformed):
        with pytest.raises(StaleLeaseError):
            await store.complete(lease, b"1")
        with pytest.raises(StaleLeaseError):
            await store.fail(lease, JobError("E", "e"), retry_delay=None)
        assert await store.report_progress(lease, 0.5, "x") is False
        assert await store.release([lease]) == 0
    forged = [wrong, malformed, claimed.lease]
    assert await store.heartbeat(forged, 30) == [wrong, malformed]
    assert await store.complete_many([(malformed, b"1"), (wrong, b"1")]) == [False, False]
    assert (await store.get(job.id)).status is JobStatus.IN_PROGRESS
    await store.complete(claimed.lease, b"ok")


# --- an unreachable Redis ----------------------------------------------------------------

Op = Callable[[JobStore], Awaitable[Any]]
OPS: dict[str, Op] = {
    "open": lambda s: s.open(),
    "ping": lambda s: s.ping(),
    "create": lambda s: s.create(NewJob.build(NAME, b"{}")),
    "create_many": lambda s: s.create_many([NewJob.build(n, b"{}") for n in (NAME, OTHER)]),
    "get": lambda s: s.get(NewJob.build(NAME, b"{}").id),
    "claim": lambda s: s.claim("w", [NAME, OTHER], count=5, lease_seconds=30),
    "wait_for_work": lambda s: s.wait_for_work([NAME], timeout=5),
    "stats": lambda s: s.stats(NAME),
    "workers": lambda s: s.workers(),
}


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A server that accepts connections and never answers (a cut network)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.redis
@pytest.mark.parametrize("where", ["closed port", "silent server"])
@pytest.mark.parametrize("op", sorted(OPS))
async def test_unreachable_redis_raises_store_unavailable_quickly(op: str, where: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if where == "closed port":
            port = free_port()
        else:
            port = await stack.enter_async_context(silent_server())
        store = RedisJobStore(f"redis://127.0.0.1:{port}/0", prefix="down", timeout=0.5)
        stack.push_async_callback(store.close)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await OPS[op](store)
        assert time.monotonic() - started < 3.0
    assert isinstance(caught.value.__cause__, redis.exceptions.RedisError | OSError)
    assert caught.value.retry_after > 0


@pytest.mark.redis
async def test_store_survives_a_redis_restart(redis_server: RedisServer, key_prefix: str) -> None:
    """Pooled connections die and the scripts are gone (NOSCRIPT): both are handled."""
    store = RedisJobStore(redis_server.url, prefix=key_prefix, timeout=2.0)
    try:
        await store.open()
        await store.create(NewJob.build(NAME, b"{}"))
        redis_server.restart()  # no persistence: an empty Redis without our scripts
        made = await store.create_many([NewJob.build(n, b"{}") for n in (NAME, OTHER)])
        got = await store.claim("w", [NAME, OTHER], count=5, lease_seconds=30)
        assert sorted(c.job.id for c in got) == sorted(j.id for j in made)
        assert await store.complete_many([(c.lease, b"1") for c in got]) == [True, True]
    finally:
        await store.close()
        await delete_prefix(redis_server.url, key_prefix)
