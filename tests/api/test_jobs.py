"""The job routes: read (and long-poll), cancel, 404 and 409, and what the resource shows
in each status."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from asyncendpoints.http import JobResource
from asyncendpoints.job import JobError
from tests.api.conftest import MOUNTS, Api, MakeApi
from tests.api.test_submit import assert_problem


@pytest.fixture(params=MOUNTS)
def mount(request: pytest.FixtureRequest) -> str:
    mounted: str = request.param
    return mounted


UNKNOWN_ID = "0123abcd-AAAAAAAAAAAAAAAAAAAAAA"


async def submit(api: Api, message: str = "x") -> str:
    response = await api.client.post("/echo", json={"message": message})
    assert response.status_code == 202
    location: str = response.headers["location"]
    return location


async def test_unknown_and_malformed_ids_are_404(api: Api) -> None:
    for path in (f"/jobs/{UNKNOWN_ID}", "/jobs/not-an-id", "/jobs/%20", "/jobs/" + "a" * 500):
        assert_problem(await api.client.get(path), 404, "job-not-found")
    assert_problem(await api.client.post(f"/jobs/{UNKNOWN_ID}/cancel"), 404, "job-not-found")
    assert_problem(await api.client.delete("/jobs/nope"), 404, "job-not-found")


async def test_a_completed_job_shows_its_result(api: Api) -> None:
    location = await submit(api, "hello")
    await api.finish("echo", {"message": "hello", "n": [1, 2.5, None]})
    response = await api.client.get(location)
    resource = JobResource.model_validate(response.json())
    assert resource.status == "Completed"
    assert resource.result == {"message": "hello", "n": [1, 2.5, None]}
    assert resource.startedAt is not None and resource.completedAt is not None
    assert resource.links.cancel is None and resource.error is None


async def test_in_progress_shows_progress_scheduled_shows_the_last_error(api: Api) -> None:
    response = await api.client.post("/reports/eu", json={"month": "2026-01"})
    location = response.headers["location"]
    _, lease = await api.claim("report")
    assert await api.store.report_progress(lease, 0.25, "page 1 of 4")
    doc = (await api.client.get(location)).json()
    assert doc["status"] == "InProgress"
    assert doc["progress"] == {"fraction": 0.25, "message": "page 1 of 4"}
    await api.store.fail(lease, JobError("TimeoutError", "slow page"), retry_delay=60)
    doc = (await api.client.get(location)).json()
    JobResource.model_validate(doc)
    assert doc["status"] == "Scheduled" and doc["retryCount"] == 1
    assert doc["error"] == {"type": "TimeoutError", "message": "slow page"}
    assert doc["retryDelayUntil"] is not None and doc["progress"] is None


async def test_a_failed_job_shows_its_error(api: Api) -> None:
    location = await submit(api)
    _, lease = await api.claim("echo")
    await api.store.fail(lease, JobError("PermanentError", "no such region"), retry_delay=None)
    doc = (await api.client.get(location)).json()
    assert doc["status"] == "Failed" and doc["result"] is None
    assert doc["error"] == {"type": "PermanentError", "message": "no such region"}


async def test_cancel_then_409_once_finished(api: Api) -> None:
    location = await submit(api)
    canceled = await api.client.post(f"{location}/cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "Canceled"
    assert await api.queued("echo") == 0
    doc = assert_problem(await api.client.post(f"{location}/cancel"), 409, "invalid-transition")
    assert doc["jobStatus"] == "Canceled"
    assert_problem(await api.client.delete(location), 409, "invalid-transition")


async def test_delete_cancels_and_a_completed_job_is_409(api: Api) -> None:
    location = await submit(api)
    deleted = await api.client.delete(location)
    assert deleted.status_code == 200 and deleted.json()["status"] == "Canceled"
    done = await submit(api)
    await api.finish("echo", "ok")
    assert_problem(await api.client.delete(done), 409, "invalid-transition")
    assert (await api.client.get(done)).json()["status"] == "Completed"


async def test_long_poll_returns_as_soon_as_the_job_finishes(api: Api) -> None:
    location = await submit(api)

    async def work() -> None:
        await asyncio.sleep(0.3)
        await api.finish("echo", {"done": True})

    worker = asyncio.create_task(work())
    start = time.monotonic()
    response = await api.client.get(location, params={"wait": 20})
    elapsed = time.monotonic() - start
    await worker
    assert response.json()["status"] == "Completed"
    assert response.json()["result"] == {"done": True}
    assert 0.3 <= elapsed < 1.5, elapsed


async def test_long_poll_gives_up_after_the_wait(api: Api) -> None:
    location = await submit(api)
    start = time.monotonic()
    response = await api.client.get(location, params={"wait": 0.3})
    elapsed = time.monotonic() - start
    assert response.status_code == 200 and response.json()["status"] == "Queued"
    assert 0.3 <= elapsed < 1.5, elapsed


async def test_long_poll_is_capped_by_the_settings(make_api: MakeApi) -> None:
    api = await make_api(long_poll_max_seconds=0.2)
    location = await submit(api)
    start = time.monotonic()
    response = await api.client.get(location, params={"wait": 3600})
    assert response.json()["status"] == "Queued"
    assert time.monotonic() - start < 1.0


async def test_long_poll_of_a_finished_job_answers_at_once(api: Api) -> None:
    location = await submit(api)
    await api.finish("echo", 1)
    start = time.monotonic()
    response = await api.client.get(location, params={"wait": 30})
    assert response.json()["result"] == 1
    assert time.monotonic() - start < 0.2


async def test_invalid_waits_are_422(api: Api) -> None:
    location = await submit(api)
    for wait in ("-1", "soon", "nan", "inf"):
        response = await api.client.get(location, params={"wait": wait})
        assert_problem(response, 422, "validation")


async def test_the_stored_result_is_sent_as_stored(api: Api) -> None:
    location = await submit(api)
    _, lease = await api.claim("echo")
    await api.store.complete(lease, orjson.dumps({"big": 2**60, "text": "é\u2028"}))
    response = await api.client.get(location)
    assert response.json()["result"] == {"big": 2**60, "text": "é\u2028"}
