"""The app the scale-down test runs in real ``asyncendpoints worker`` processes.

``asyncendpoints worker tests.controller.worker_app:app`` serves ``generate-report`` (the
pools' job name in these tests) with a handler that holds its job until the test lets it
go: it returns once the key ``<prefix>:test:release:<job id>`` exists in the job store's
Redis. So a test decides which workers are busy and which are idle, and the workers report
that themselves (their registration's in-flight count), as in production.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis
from pydantic import BaseModel

from asyncendpoints import AsyncEndpoints, JobContext

app = AsyncEndpoints()
RELEASE_POLL_SECONDS = 0.05


class Report(BaseModel):
    month: str = ""


def release_key(prefix: str, job_id: str) -> str:
    """The key that lets the job ``job_id`` finish."""
    return f"{prefix}:test:release:{job_id}"


_client: aioredis.Redis | None = None


@app.post("/reports", name="generate-report", max_retries=0)
async def generate_report(request: Report, ctx: JobContext) -> dict[str, str]:
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["ASYNCENDPOINTS_REDIS_URL"])
    key = release_key(app.settings.key_prefix, ctx.job_id)
    while not await _client.exists(key):
        await asyncio.sleep(RELEASE_POLL_SECONDS)
    return {"released": ctx.job_id}
