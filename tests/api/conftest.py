"""Fixtures of the API tests: the app of ``tests/api/apps.py`` served by ``create_app``
over httpx's ASGI transport, on the in-memory store and on a real Redis store.

``make_api(**settings)`` builds one (its lifespan entered, so the store is open), and
cleans up afterwards: the store closed, the test's Redis keys deleted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from api import create_app
from asyncendpoints import AsyncEndpoints, InMemoryJobStore, JobStore, Settings
from asyncendpoints.http import install
from asyncendpoints.job import Job, Lease
from asyncendpoints.store.redis import RedisJobStore
from tests.api.apps import calls, make_app

STORES = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
BASE_URL = "http://api.test"


async def delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def redis_store(settings: Settings) -> JobStore:
    store: JobStore = RedisJobStore.from_settings(settings)
    return store


@dataclass
class Api:
    ae: AsyncEndpoints
    app: FastAPI
    client: httpx.AsyncClient
    store: JobStore

    async def queued(self, name: str) -> int:
        return (await self.store.stats(name)).queued

    async def job(self, response: httpx.Response) -> Job:
        """The stored job a 202 answer names."""
        return await self.store.get(response.headers["location"].rsplit("/", 1)[1])

    async def claim(self, name: str) -> tuple[Job, Lease]:
        """Claim the oldest job of ``name`` as a worker would."""
        claims = await self.store.claim("test-worker", [name], count=1, lease_seconds=30)
        assert len(claims) == 1, f"no {name} job to claim"
        return claims[0].job, claims[0].lease

    async def finish(self, name: str, result: Any) -> Job:
        """Claim and complete the oldest job of ``name`` with ``result``."""
        job, lease = await self.claim(name)
        await self.store.complete(lease, orjson.dumps(result))
        return job


MakeApi = Callable[..., Awaitable[Api]]


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` with its lifespan entered, and a client over the ASGI transport."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


MOUNTS = ["api", "included"]
"""How the routes are served: by ``create_app`` (the ``asyncendpoints api`` app, whose
submit routes answer without FastAPI's request handler), or installed into a plain
FastAPI app (through an included router: FastAPI's full path). Modules that test the
HTTP contract override ``mount`` with both."""


@pytest.fixture
def mount() -> str:
    return "api"


@pytest.fixture
async def make_api(
    store_kind: str, mount: str, request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[MakeApi]:
    url: str | None = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    calls.clear()
    async with contextlib.AsyncExitStack() as stack:

        async def make(*, store: JobStore | None = None, **overrides: Any) -> Api:
            settings = Settings(redis_url=url, key_prefix=key_prefix, **overrides)
            if store is None:
                store = InMemoryJobStore() if url is None else redis_store(settings)
            ae = make_app(settings, store)
            if mount == "api":
                app = create_app(ae)
            else:
                app = FastAPI(title="included")
                install(ae, app)
            client = await stack.enter_async_context(serving(app))
            return Api(ae, app, client, store)

        yield make
    if url is not None:
        await delete_prefix(url, key_prefix)


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
