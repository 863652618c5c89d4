"""The app of the recovery benchmark (:mod:`benchmarks.chaos`): one endpoint, ``chaos``.

Its handler sleeps ``ms`` milliseconds (work a SIGKILL can interrupt), then counts its run
with ``HINCRBY <prefix>:bench:exec <job id> 1`` in the job store's Redis, so the benchmark
sees how often each job's handler ran to its end.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis
from pydantic import BaseModel

from asyncendpoints import AsyncEndpoints, JobContext

app = AsyncEndpoints()
MAX_RETRIES = 20
"""A job may lose several workers in one run; it must not fail for it."""


class Work(BaseModel):
    ms: float = 5.0


def executions_key(prefix: str) -> str:
    return f"{prefix}:bench:exec"


_client: aioredis.Redis | None = None


@app.post("/chaos", name="chaos", max_retries=MAX_RETRIES)
async def chaos(request: Work, ctx: JobContext) -> dict[str, str]:
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["ASYNCENDPOINTS_REDIS_URL"])
    await asyncio.sleep(request.ms / 1000)
    await _client.hincrby(executions_key(app.settings.key_prefix), ctx.job_id, 1)
    return {"ran": ctx.job_id}
