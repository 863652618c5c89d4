"""The ``store`` fixture: every test here runs against the in-memory and the Redis store.

``kit`` gives more of the same store: ``kit.fresh(retention_seconds=...)`` a new empty
store, ``kit.peer(store)`` another client on the same data (Redis: its own connection
pool; memory: the same object, a single process has one store). Redis keys of the test's
prefix are deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from asyncendpoints.store.base import JobStore
from asyncendpoints.store.memory import InMemoryJobStore
from asyncendpoints.store.redis import RedisJobStore

NAME = "report"
OTHER = "render"


async def delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        batch = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(batch), 500):
            await client.delete(*batch[i : i + 500])
    finally:
        await client.aclose()


@dataclass
class StoreKit:
    kind: str
    url: str | None = None
    prefix: str | None = None
    made: list[JobStore] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)

    async def fresh(self, *, retention_seconds: float = 86_400.0) -> JobStore:
        """A new, empty store (Redis: a prefix of its own)."""
        store: JobStore
        if self.kind == "memory":
            store = InMemoryJobStore(retention_seconds=retention_seconds)
        else:
            assert self.url is not None
            prefix = f"{self.prefix}{uuid.uuid4().hex[:6]}"
            self.prefixes.append(prefix)
            store = RedisJobStore(self.url, prefix=prefix, retention_seconds=retention_seconds)
        await store.open()
        self.made.append(store)
        return store

    async def peer(self, store: JobStore) -> JobStore:
        """Another client of the same data."""
        if not isinstance(store, RedisJobStore):
            return store
        assert self.url is not None
        other = RedisJobStore(
            self.url, prefix=store.keys.prefix, retention_seconds=store.retention_seconds
        )
        await other.open()
        self.made.append(other)
        return other

    async def cleanup(self) -> None:
        for store in self.made:
            await store.close()
        if self.url is not None:
            for prefix in self.prefixes:
                await delete_prefix(self.url, prefix)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[StoreKit]:
    if request.param == "memory":
        made = StoreKit("memory")
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("key_prefix")
        made = StoreKit("redis", url, prefix)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
async def store(kit: StoreKit) -> JobStore:
    return await kit.fresh()
