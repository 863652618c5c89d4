"""Problems: an unreachable store is 503 with Retry-After (never a 500 with a traceback),
and the app's own errors (unknown route, wrong method) are problem+json too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from asyncendpoints import InMemoryJobStore, JobStore, NewJob, Settings, StoreUnavailableError
from asyncendpoints.job import Job
from asyncendpoints.types import JobId, JobName
from tests.api.apps import TOKEN_A
from tests.api.conftest import Api, MakeApi, redis_store
from tests.api.test_submit import assert_problem
from tests.support.redis_server import free_port

SECRET_HOST = "redis-secret-host.internal"


class DownStore(InMemoryJobStore):
    """An in-memory store whose backend is gone."""

    def _down(self) -> StoreUnavailableError:
        return StoreUnavailableError(f"connection to {SECRET_HOST} refused", retry_after=3)

    async def ping(self) -> None:
        raise self._down()

    async def register_names(self, names: Sequence[JobName]) -> None:
        raise self._down()

    async def create(self, job: NewJob, **options: Any) -> Job:
        raise self._down()

    async def get(self, job_id: JobId) -> Job:
        raise self._down()

    async def cancel(self, job_id: JobId) -> Job:
        raise self._down()


@pytest.fixture
def down_store(store_kind: str, key_prefix: str) -> JobStore:
    if store_kind == "memory":
        return DownStore()
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    return redis_store(Settings(redis_url=dead, key_prefix=key_prefix, redis_timeout=0.5))


async def test_an_unreachable_store_is_503_with_retry_after(
    make_api: MakeApi, down_store: JobStore
) -> None:
    api = await make_api(store=down_store)
    submitted = await api.client.post("/echo", json={"message": "x"})
    assert_problem(submitted, 503, "store-unavailable")
    assert int(submitted.headers["retry-after"]) >= 1
    job_path = "/jobs/0123abcd-AAAAAAAAAAAAAAAAAAAAAA"
    assert_problem(await api.client.get(job_path), 503, "store-unavailable")
    assert_problem(await api.client.post(f"{job_path}/cancel"), 503, "store-unavailable")
    assert_problem(await api.client.get("/readyz"), 503, "store-unavailable")
    assert (await api.client.get("/healthz")).status_code == 200
    for response in (submitted, await api.client.get(job_path)):
        assert "Traceback" not in response.text
        assert SECRET_HOST not in response.text and "127.0.0.1" not in response.text


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    missing = await api.client.get("/no/such/route")
    assert_problem(missing, 404)
    assert missing.json()["type"] == "about:blank"
    wrong = await api.client.get("/echo")
    assert_problem(wrong, 405)
    assert "POST" in wrong.headers["allow"]


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}


async def test_the_operations_routes_need_no_token(make_api: MakeApi) -> None:
    api = await make_api(auth_tokens=[TOKEN_A])
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"):
        assert (await api.client.get(path)).status_code == 200
