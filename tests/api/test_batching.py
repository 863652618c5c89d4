"""Group commit: concurrent submissions of one name are stored together, each answered
with its own job; a failing batch fails each of its requests; and the direct submit
path (routes served where they were added, without FastAPI's request handler) is taken
only where no dependency could be skipped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from asyncendpoints import InMemoryJobStore, Job, NewJob, Settings, StoreUnavailableError
from asyncendpoints.http import add_routes
from asyncendpoints.http.batching import SubmitBatcher
from asyncendpoints.manager import JobManager
from tests.api.apps import make_app
from tests.api.conftest import Api, MakeApi, serving
from tests.api.test_submit import assert_problem


class CountingStore(InMemoryJobStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.fail_next = False

    async def create_many(self, jobs: Sequence[NewJob], **options: Any) -> list[Job]:
        self.batches.append(len(jobs))
        await asyncio.sleep(0.01)  # a round trip: the next submissions gather meanwhile
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailableError("down for a moment")
        return await super().create_many(jobs, **options)


async def test_concurrent_submissions_share_store_calls(make_api: MakeApi) -> None:
    store = CountingStore()
    api = await make_api(store=store)
    responses = await asyncio.gather(
        *(api.client.post("/echo", json={"message": f"m{i}"}) for i in range(40))
    )
    assert [r.status_code for r in responses] == [202] * 40
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 40
    assert sum(store.batches) == 40 and len(store.batches) < 40
    for response in responses:  # each request got its own job back
        job = await api.job(response)
        assert job.id == response.json()["id"]
    assert await api.queued("echo") == 40


async def test_a_failed_batch_fails_each_of_its_requests_and_the_next_go_on(
    make_api: MakeApi,
) -> None:
    store = CountingStore()
    api = await make_api(store=store)
    store.fail_next = True
    first = await asyncio.gather(
        *(api.client.post("/echo", json={"message": "x"}) for _ in range(5))
    )
    statuses = [r.status_code for r in first]
    assert 503 in statuses
    for response in first:
        if response.status_code == 503:
            assert_problem(response, 503, "store-unavailable")
    after = await api.client.post("/echo", json={"message": "y"})
    assert after.status_code == 202
    assert await api.queued("echo") == statuses.count(202) + 1


async def test_the_batcher_resolves_every_submission_when_the_store_misbehaves() -> None:
    class Short(InMemoryJobStore):
        async def create_many(self, jobs: Sequence[NewJob], **options: Any) -> list[Job]:
            return (await super().create_many(jobs, **options))[:-1]  # one job short

    batcher = SubmitBatcher(JobManager(Short(), Settings()))
    jobs = [NewJob.build("echo", b"null") for _ in range(3)]
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.create(job) for job in jobs), return_exceptions=True), 2
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    ok = await asyncio.wait_for(
        SubmitBatcher(JobManager(InMemoryJobStore(), Settings())).create(jobs[0]), 2
    )
    assert ok.id == jobs[0].id


async def test_validation_messages_by_path(api: Api, mount: str) -> None:
    """The api app validates raw JSON with pydantic; an included router, with FastAPI."""
    response = await api.client.post(
        "/echo", content=b'{"message": ', headers={"content-type": "application/json"}
    )
    error = assert_problem(response, 422, "validation")["errors"][0]  # type: ignore[index]
    assert error["loc"][0] == "body" and error["type"] == "json_invalid"
    expected = "Invalid JSON" if mount == "api" else "JSON decode error"
    assert error["msg"].startswith(expected)


@pytest.fixture(params=["api", "included"])
def mount(request: pytest.FixtureRequest) -> str:
    mounted: str = request.param
    return mounted


async def require_user(x_user: str | None = Header(default=None)) -> None:
    if x_user != "alice":
        raise HTTPException(403, "who are you?")


async def test_routes_added_to_an_app_with_dependencies_run_them() -> None:
    ae = make_app(Settings(), InMemoryJobStore())
    app = FastAPI(dependencies=[Depends(require_user)])
    add_routes(app.router, ae)
    async with serving(app) as client:
        assert_problem(await client.post("/echo", json={"message": "x"}), 403)
        ok = await client.post("/echo", json={"message": "x"}, headers={"X-User": "alice"})
        assert ok.status_code == 202


async def test_add_routes_passes_its_dependencies() -> None:
    ae = make_app(Settings(), InMemoryJobStore())
    app = FastAPI()
    add_routes(app.router, ae, dependencies=[Depends(require_user)])
    async with serving(app) as client:
        assert_problem(await client.post("/echo", json={"message": "x"}), 403)
        assert_problem(await client.get("/jobs/0123abcd-AAAAAAAAAAAAAAAAAAAAAA"), 403)
