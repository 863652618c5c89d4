"""End to end: a real ``asyncendpoints api examples.reports:app`` process against the
session's Redis; jobs submitted over HTTP, run by a test worker through the store
(claim, run the handler, complete), results read back over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from asyncendpoints import JobContext, JobStore
from asyncendpoints.client import AsyncEndpointsClient
from asyncendpoints.store.redis import RedisJobStore
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("asyncendpoints")

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCENDPOINTS_")}
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def server(redis_url: str, key_prefix: str, tmp_path: Path) -> AsyncIterator[Server]:
    port = free_port()
    env = clean_env(
        ASYNCENDPOINTS_REDIS_URL=redis_url,
        ASYNCENDPOINTS_KEY_PREFIX=key_prefix,
        ASYNCENDPOINTS_LOG_FORMAT="json",
    )
    log = tmp_path / "api.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(CLI), "api", "examples.reports:app", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=url) as client:
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the api exited: {log.read_text()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the api did not become ready in 30 s")
                await asyncio.sleep(0.1)
        yield Server(process, url, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[JobStore]:
    redis_store: JobStore = RedisJobStore(redis_url, prefix=key_prefix)
    await redis_store.open()
    yield redis_store
    await redis_store.close()


async def work_one(store: JobStore, name: str) -> None:
    """Run one job of ``name`` as a worker would: claim, run the handler, complete."""
    from examples.reports import app as example

    claims = []
    while not claims:
        claims = await store.claim("e2e-worker", [name], count=1, lease_seconds=30)
        if not claims:
            await asyncio.sleep(0.02)
    job, lease = claims[0].job, claims[0].lease
    result = await example.endpoint(name).run(job.payload, JobContext.for_job(job), None)
    await store.complete(lease, result)


async def test_submit_over_http_run_by_a_worker_read_over_http(
    server: Server, store: JobStore
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        submitted = await client.post("/echo", json={"message": "end to end"})
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["location"]
        assert location == f"/jobs/{submitted.json()['id']}"
        assert (await store.get(submitted.json()["id"])).status == "Queued"

        poll = asyncio.create_task(client.get(location, params={"wait": 20}))
        await asyncio.sleep(0.2)
        assert not poll.done()
        started = time.monotonic()
        await work_one(store, "echo")
        answer = await poll
        assert time.monotonic() - started < 1.5
        assert answer.json()["status"] == "Completed"
        assert answer.json()["result"] == {"message": "end to end"}

        invalid = await client.post("/reports/eu", json={"month": "someday"})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"] == "application/problem+json"
        metrics = (await client.get("/metrics")).text
        assert (
            'asyncendpoints_http_submissions_total{name="echo",outcome="accepted"} 1.0' in metrics
        )


async def test_the_client_against_the_real_server(server: Server, store: JobStore) -> None:
    async with AsyncEndpointsClient(server.url) as client:
        worker = asyncio.create_task(work_one(store, "generate-report"))
        report = await client.submit_and_wait(
            "/reports/eu", {"month": "2026-11", "pages": 2, "seconds_per_page": 0}, timeout=20
        )
        await worker
    assert report == {
        "region": "eu",
        "month": "2026-11",
        "pages": 2,
        "url": "/files/eu-2026-11.pdf",
    }


async def test_the_server_stops_cleanly_on_sigterm(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down, then re-raises the signal it caught: exit by SIGTERM
    assert server.process.wait(15) in (0, -signal.SIGTERM)
    output = server.output()
    assert f"docs: {server.url}/docs" in output
    assert "store: RedisJobStore" in output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output


def test_api_without_redis_says_what_is_missing() -> None:
    done = subprocess.run(
        [str(CLI), "api", "examples.reports:app"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    message = done.stderr.decode()
    assert "ASYNCENDPOINTS_REDIS_URL" in message and "--allow-memory" in message
