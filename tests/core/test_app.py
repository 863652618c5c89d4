"""The app object: declaring endpoints, submitting from Python, running a handler."""

from __future__ import annotations

import asyncio
import threading

import orjson
import pytest
from pydantic import BaseModel

from asyncendpoints import (
    AsyncEndpoints,
    ConfigurationError,
    InMemoryJobStore,
    JobContext,
    JobStatus,
    PayloadError,
    QueueFullError,
    Settings,
    load_app,
)


class Req(BaseModel):
    n: int


def make_app(**settings: object) -> AsyncEndpoints:
    return AsyncEndpoints(Settings(**settings), store=InMemoryJobStore())  # type: ignore[arg-type]


def test_declaration_reads_the_signature() -> None:
    app = make_app()

    @app.post("/double/{x}", name="double", max_retries=2, timeout=5)
    async def double(request: Req, ctx: JobContext) -> dict[str, int]:
        return {"n": request.n * 2}

    endpoint = app.endpoint("double")
    assert (endpoint.method, endpoint.path) == ("POST", "/double/{x}")
    assert endpoint.body_param == "request" and endpoint.body_type is Req
    assert endpoint.context_param == "ctx"
    assert endpoint.max_retries == 2 and endpoint.timeout == 5
    assert endpoint.is_async


@pytest.mark.parametrize("name", ["", "has space", "x" * 64, "-leading"])
def test_bad_names_are_refused(name: str) -> None:
    app = make_app()
    with pytest.raises(ConfigurationError):
        app.post("/x", name=name)(lambda request: None)


def test_duplicate_names_and_two_bodies_are_refused() -> None:
    app = make_app()

    @app.post("/a", name="a")
    async def a(request: Req) -> None: ...

    with pytest.raises(ConfigurationError, match="twice"):
        app.post("/b", name="a")(a)
    with pytest.raises(ConfigurationError, match="second body"):

        @app.post("/c", name="c")
        async def c(one: Req, two: Req) -> None: ...


async def test_submit_validates_and_stores() -> None:
    app = make_app(max_retries=5)

    @app.post("/a", name="a")
    async def a(request: Req) -> int:
        return request.n

    job = await app.submit("a", {"n": 3})
    assert job.status is JobStatus.QUEUED
    assert orjson.loads(job.payload) == {"n": 3}
    assert job.max_retries == 5  # the global default when the endpoint sets none
    with pytest.raises(PayloadError):
        await app.submit("a", {"n": "three"})
    with pytest.raises(ConfigurationError):
        await app.submit("missing", {})
    assert (await app.store.stats("a")).queued == 1  # the refused ones stored nothing


async def test_queue_limit_is_enforced_through_the_app() -> None:
    app = make_app(max_queue_size=2)

    @app.post("/a", name="a")
    async def a(request: Req) -> int:
        return request.n

    await app.submit_many("a", [{"n": 1}, {"n": 2}])
    with pytest.raises(QueueFullError):
        await app.submit("a", {"n": 3})
    assert (await app.store.stats("a")).queued == 2


async def test_sync_handlers_run_in_a_thread_and_see_the_context() -> None:
    app = make_app()
    seen: list[str] = []

    @app.post("/s/{region}", name="s")
    def sync_handler(request: Req, ctx: JobContext) -> dict[str, object]:
        seen.append(threading.current_thread().name)
        return {"n": request.n, "region": ctx.route_params["region"]}

    from asyncendpoints import HttpContext

    job = await app.submit("s", {"n": 1}, context=HttpContext(route_params={"region": "eu"}))
    [claim] = await app.store.claim("w", ["s"], count=1, lease_seconds=5)
    result = await app.endpoint("s").run(claim.job.payload, JobContext.for_job(claim.job), None)
    assert orjson.loads(result) == {"n": 1, "region": "eu"}
    assert seen and seen[0] != threading.main_thread().name
    assert claim.job.id == job.id


async def test_progress_is_validated() -> None:
    ctx = JobContext(job_id="j", name="n")
    await ctx.report_progress(0.5)
    with pytest.raises(ValueError, match="fraction"):
        await ctx.report_progress(1.5)


async def test_wait_returns_when_finished() -> None:
    app = make_app()

    @app.post("/a", name="a")
    async def a(request: Req) -> int:
        return request.n

    job = await app.submit("a", {"n": 1})

    async def finish() -> None:
        await asyncio.sleep(0.05)
        [claim] = await app.store.claim("w", ["a"], count=1, lease_seconds=5)
        await app.store.complete(claim.lease, b"1")

    task = asyncio.create_task(finish())
    done = await app.wait(job.id, timeout=5)
    await task
    assert done.status is JobStatus.COMPLETED and done.result == b"1"


def test_load_app() -> None:
    app = load_app("examples.reports:app")
    assert "generate-report" in app.endpoints
    for bad in [
        "examples.reports",
        "no.such.module:app",
        "examples.reports:nothing",
        "examples.reports:Report",
    ]:
        with pytest.raises(ConfigurationError):
            load_app(bad)
