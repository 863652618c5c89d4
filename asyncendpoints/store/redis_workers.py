"""The worker registry in Redis: who is alive, and who holds leases but is not.

A worker's liveness is the TTL of its own key (Redis' clock, so no two hosts' clocks are
compared); the ``workers`` sorted set is only an index of the ids, pruned of entries long
past their expiry. :class:`~asyncendpoints.store.redis.RedisJobStore` delegates to
:class:`RedisWorkerRegistry`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from asyncendpoints.job import WorkerInfo
from asyncendpoints.store import scripts
from asyncendpoints.store.keys import KeySpace
from asyncendpoints.store.redis_io import Call, ms, run_scripts
from asyncendpoints.types import JobName, WorkerId

WORKER_GC_SECONDS = 3600.0
"""Entries of the workers zset this long past their expiry are dropped."""


class RedisWorkerRegistry:
    """Register, list and find dead workers (see the module's docstring)."""

    def __init__(self, client: aioredis.Redis, keys: KeySpace) -> None:
        self._client = client
        self.keys = keys
        self._holders = client.register_script(scripts.LEASE_HOLDERS)

    async def register(self, info: WorkerInfo, ttl: float) -> None:
        now = time.time()
        data = dataclasses.replace(info, last_seen=now).to_json()
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self.keys.worker(info.worker_id), data, px=ms(ttl))
        pipe.zadd(self.keys.workers, {info.worker_id: now + ttl})
        pipe.zremrangebyscore(self.keys.workers, "-inf", now - WORKER_GC_SECONDS)
        await pipe.execute()

    async def unregister(self, worker_id: WorkerId) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.delete(self.keys.worker(worker_id))
        pipe.zrem(self.keys.workers, worker_id)
        await pipe.execute()

    async def workers(self) -> list[WorkerInfo]:
        ids = await self._client.execute_command("ZRANGE", self.keys.workers, 0, -1)
        pipe = self._client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.get(self.keys.worker(worker_id.decode()))
        found = await pipe.execute() if ids else []
        return [WorkerInfo.from_json(raw) for raw in found if raw is not None]

    async def dead(self, names: Sequence[JobName]) -> list[WorkerId]:
        """Workers that hold a lease of ``names`` but whose key has expired."""
        calls: list[Call] = [
            (self._holders, [self.keys.leases(name), self.keys.job_prefix(name)], [])
            for name in names
        ]
        replies = await run_scripts(self._client, calls)
        holders = sorted({worker.decode() for reply in replies for worker in reply})
        pipe = self._client.pipeline(transaction=False)
        for worker_id in holders:
            pipe.exists(self.keys.worker(worker_id))
        live = await pipe.execute() if holders else []
        return [w for w, alive in zip(holders, live, strict=True) if not alive]


__all__ = ["WORKER_GC_SECONDS", "RedisWorkerRegistry"]
