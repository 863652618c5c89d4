"""Redis work per job, counted by Redis itself (``INFO commandstats``, which counts the
commands run inside Lua scripts): enqueue + claim + complete must cost at most 8."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from asyncendpoints.job import NewJob
from asyncendpoints.store.redis import RedisJobStore
from tests.core.store.conftest import NAME, delete_prefix

pytestmark = pytest.mark.redis

JOBS = 200
BUDGET = 8
NOT_JOB_WORK = {"evalsha", "eval", "info", "script", "ping", "hello", "client"}
"""The script calls themselves (their inner commands are counted) and housekeeping."""


async def command_calls(client: aioredis.Redis) -> dict[str, int]:
    info = await client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in info.items()
        if name.removeprefix("cmdstat_").split("|")[0] not in NOT_JOB_WORK
    }


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    moved = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return {name: calls for name, calls in moved.items() if calls}


@pytest.fixture
async def stats_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.mark.parametrize("enqueue", ["create_many", "create"])
async def test_create_claim_complete_cost_at_most_8_commands_per_job(
    enqueue: str, redis_url: str, key_prefix: str, stats_client: aioredis.Redis
) -> None:
    """``create``: one job per call, as the API submits them (concurrently)."""
    store = RedisJobStore(redis_url, prefix=key_prefix)
    try:
        await store.open()
        before = await command_calls(stats_client)
        jobs = [NewJob.build(NAME, b"{}") for _ in range(JOBS)]
        if enqueue == "create_many":
            await store.create_many(jobs)
        else:
            await asyncio.gather(*(store.create(job, max_queue_size=10_000) for job in jobs))
        created = await command_calls(stats_client)
        claims = []
        while batch := await store.claim("w", [NAME], count=100, lease_seconds=30):
            claims += batch
        claimed = await command_calls(stats_client)
        done = await store.complete_many([(c.lease, b"null") for c in claims])
        after = await command_calls(stats_client)
    finally:
        await store.close()
        await delete_prefix(redis_url, key_prefix)
    assert len(claims) == JOBS and all(done)
    per_op = {
        "create": sum(delta(before, created).values()) / JOBS,
        "claim": sum(delta(created, claimed).values()) / JOBS,
        "complete": sum(delta(claimed, after).values()) / JOBS,
    }
    total = sum(per_op.values())
    print(f"\n{enqueue}: Redis commands per job: {total:.3f} {per_op} {delta(before, after)}")
    assert total <= BUDGET, (per_op, delta(before, after))
    assert total >= 6  # the count really saw the scripts' inner commands
