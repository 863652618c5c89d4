"""The httpx client: submit, long-poll for the result, and domain errors from problems."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from asyncendpoints import InvalidTransitionError, JobNotFoundError, PayloadError, QueueFullError
from asyncendpoints.client import (
    AsyncEndpointsClient,
    JobFailedError,
    UnauthorizedError,
)
from asyncendpoints.errors import JobCanceledError
from asyncendpoints.job import JobError
from tests.api.apps import TOKEN_A
from tests.api.conftest import BASE_URL, Api, MakeApi


def client_for(api: Api, token: str | None = None) -> AsyncEndpointsClient:
    return AsyncEndpointsClient(BASE_URL, token=token, transport=httpx.ASGITransport(app=api.app))


async def test_submit_and_wait_for_the_result(api: Api) -> None:
    async def work() -> None:
        while await api.queued("echo") == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        await api.finish("echo", {"message": "back"})

    worker = asyncio.create_task(work())
    async with client_for(api) as client:
        result = await client.submit_and_wait("/echo", {"message": "hi"}, timeout=10)
    await worker
    assert result == {"message": "back"}


async def test_submit_is_idempotent_with_a_key(api: Api) -> None:
    async with client_for(api) as client:
        first = await client.submit("/echo", {"message": "x"}, idempotency_key="abc")
        second = await client.submit("echo", {"message": "x"}, idempotency_key="abc")
    assert first["id"] == second["id"] and first["status"] == "Queued"
    assert await api.queued("echo") == 1


async def test_result_raises_for_failed_canceled_and_unfinished_jobs(api: Api) -> None:
    async with client_for(api) as client:
        failed = await client.submit("/echo", {"message": "x"})
        _, lease = await api.claim("echo")
        await api.store.fail(lease, JobError("PermanentError", "bad"), retry_delay=None)
        with pytest.raises(JobFailedError) as info:
            await client.result(failed["id"], timeout=1)
        assert info.value.error_type == "PermanentError" and info.value.message == "bad"

        canceled = await client.submit("/echo", {"message": "x"})
        await client.cancel(canceled["id"])
        with pytest.raises(JobCanceledError):
            await client.result(canceled["id"], timeout=1)
        with pytest.raises(InvalidTransitionError):
            await client.cancel(canceled["id"])

        pending = await client.submit("/echo", {"message": "x"})
        with pytest.raises(TimeoutError):
            await client.result(pending["id"], timeout=0.3)


async def test_problems_become_domain_errors(make_api: MakeApi) -> None:
    api = await make_api(max_queue_size=1, auth_tokens=[TOKEN_A])
    async with client_for(api) as anonymous:
        with pytest.raises(UnauthorizedError):
            await anonymous.submit("/echo", {"message": "x"})
    async with client_for(api, TOKEN_A) as client:
        await client.submit("/echo", {"message": "x"})
        with pytest.raises(QueueFullError) as full:
            await client.submit("/echo", {"message": "x"})
        assert full.value.name == "echo" and full.value.limit == 1
        assert full.value.retry_after >= 1
        with pytest.raises(PayloadError):
            await client.submit("/echo", {"message": 5})
        with pytest.raises(JobNotFoundError):
            await client.get("0123abcd-AAAAAAAAAAAAAAAAAAAAAA")
