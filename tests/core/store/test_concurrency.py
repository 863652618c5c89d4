"""Many claimers at once: every job claimed exactly once, none lost, stale workers fenced."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest

from asyncendpoints.errors import StaleLeaseError
from asyncendpoints.job import JobStatus, NewJob
from asyncendpoints.store.base import JobStore
from asyncendpoints.store.redis import RedisJobStore
from tests.core.store.conftest import NAME, StoreKit, delete_prefix

JOBS = 2000
CLAIMERS = 8


async def test_eight_claimers_take_every_job_exactly_once(kit: StoreKit, store: JobStore) -> None:
    peers = [await kit.peer(store) for _ in range(CLAIMERS)]
    created: list[str] = []
    claimed: Counter[str] = Counter()
    produced = asyncio.Event()

    async def produce() -> None:
        for _ in range(JOBS // 100):
            batch = await store.create_many([NewJob.build(NAME, b"{}") for _ in range(100)])
            created.extend(job.id for job in batch)
            await asyncio.sleep(0.002)
        produced.set()

    async def work(i: int, peer: JobStore) -> None:
        while True:
            last_round = produced.is_set()  # read BEFORE the claim: then nothing is missed
            got = await peer.claim(f"w{i}", [NAME], count=25, lease_seconds=30)
            if not got:
                if last_round:
                    return
                await peer.wait_for_work([NAME], timeout=2)
                continue
            claimed.update(c.job.id for c in got)
            items = [(c.lease, f'"{c.lease.worker_id}"'.encode()) for c in got]
            assert await peer.complete_many(items) == [True] * len(got)

    started = time.monotonic()
    await asyncio.gather(produce(), *(work(i, p) for i, p in enumerate(peers)))
    assert time.monotonic() - started < 30
    assert len(created) == JOBS
    assert set(claimed) == set(created)
    assert max(claimed.values()) == 1
    stats = await store.stats(NAME)
    assert (stats.queued, stats.in_progress, stats.completed) == (0, 0, JOBS)
    for i in range(0, JOBS, 200):
        jobs = await asyncio.gather(*(store.get(job_id) for job_id in created[i : i + 200]))
        assert all(job.status is JobStatus.COMPLETED for job in jobs)


async def test_no_wake_up_is_missed_when_create_races_the_wait(
    kit: StoreKit, store: JobStore
) -> None:
    producer = await kit.peer(store)
    for round_ in range(30):
        assert await store.claim("w", [NAME], count=10, lease_seconds=30) == []

        async def create_soon(delay: float) -> None:
            await asyncio.sleep(delay)
            await producer.create(NewJob.build(NAME, b"{}"))

        started = time.monotonic()
        delay = random.choice([0.0, 0.0005, 0.002, 0.01])
        woken, _ = await asyncio.gather(store.wait_for_work([NAME], timeout=5), create_soon(delay))
        assert woken is True, round_
        assert time.monotonic() - started < 2.0
        assert len(await store.claim("w", [NAME], count=10, lease_seconds=30)) == 1


async def test_a_stale_worker_is_refused_after_recovery(kit: StoreKit, store: JobStore) -> None:
    other = await kit.peer(store)
    job = await store.create(NewJob.build(NAME, b"{}", max_retries=3))
    [slow] = await store.claim("slow", [NAME], count=1, lease_seconds=1.0)
    await asyncio.sleep(1.2)
    assert await other.recover_expired([NAME]) == [job.id]
    [fresh] = await other.claim("fresh", [NAME], count=1, lease_seconds=30)
    assert fresh.lease.token > slow.lease.token
    await other.complete(fresh.lease, b'"fresh"')
    with pytest.raises(StaleLeaseError):
        await store.complete(slow.lease, b'"slow"')
    assert await store.complete_many([(slow.lease, b'"slow"')]) == [False]
    final = await store.get(job.id)
    assert final.status is JobStatus.COMPLETED
    assert final.result == b'"fresh"' and final.worker_id == "fresh"
    assert (await store.stats(NAME)).completed == 1


async def test_completion_racing_recovery_has_one_winner(kit: StoreKit, store: JobStore) -> None:
    other = await kit.peer(store)
    for _ in range(20):
        job = await store.create(NewJob.build(NAME, b"{}", max_retries=3))
        [held] = await store.claim("w1", [NAME], count=1, lease_seconds=30)
        done, recovered = await asyncio.gather(
            store.complete_many([(held.lease, b'"w1"')]), other.recover_worker("w1", [NAME])
        )
        status = (await store.get(job.id)).status
        if done == [True]:
            assert recovered == [] and status is JobStatus.COMPLETED
        else:
            assert recovered == [job.id] and status is JobStatus.QUEUED
            [again] = await other.claim("w2", [NAME], count=1, lease_seconds=30)
            await other.complete(again.lease, b'"w2"')
    stats = await store.stats(NAME)
    assert (stats.completed, stats.queued, stats.in_progress) == (20, 0, 0)


@pytest.mark.redis
async def test_wake_up_tokens_do_not_pile_up(redis_url: str, key_prefix: str) -> None:
    """Each create on an empty queue leaves a token; claims that drain the queue drop
    the stale ones, so a busy worker that never waits cannot grow the notify list."""
    store = RedisJobStore(redis_url, prefix=key_prefix)
    try:
        for _ in range(200):
            await store.create(NewJob.build(NAME, b"{}"))  # the queue was empty: a token
            [claimed] = await store.claim("w", [NAME], count=10, lease_seconds=30)
            await store.complete(claimed.lease, b"1")
        tokens = await store._client.llen(store.keys.notify(NAME))  # type: ignore[misc]
    finally:
        await store.close()
        await delete_prefix(redis_url, key_prefix)
    assert tokens <= 1
