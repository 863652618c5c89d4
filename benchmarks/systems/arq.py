"""arq: asyncio, jobs in a sorted set, one Redis key per job, results kept in Redis.

Worker: ``arq benchmarks.systems.arq.WorkerSettings`` (one process). arq reads the queue by
polling (``poll_delay``, default 0.5 s), which both caps its drain rate and sets its idle
latency; see ``POLL_DELAY`` and ``MAX_JOBS`` below for the values used.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name, result_key_prefix

from benchmarks.systems._events import record
from benchmarks.systems.base import Monitor, System, cli, redis_url

POLL_DELAY = float(os.environ.get("BENCH_ARQ_POLL_DELAY", "0.01"))
MAX_JOBS = int(os.environ.get("BENCH_ARQ_MAX_JOBS", "100"))
CONCURRENT_ENQUEUES = 100


async def noop(ctx: dict[str, Any], i: int) -> None:
    record(i)


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(redis_url())
    poll_delay = POLL_DELAY
    max_jobs = MAX_JOBS
    # 3600 s and 1 h defaults otherwise: results are kept, so completion can be read.
    keep_result = 3600


# Per-job INFO lines off, as for every system here (WARNING and above only).
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"arq.standard": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["arq.standard"], "level": "WARNING"}},
}


def _job_id(i: int) -> str:
    return f"b{i}"


class Arq(System):
    name = "arq"
    distribution = "arq"
    worker_config = f"`arq` CLI, 1 process, max_jobs={MAX_JOBS}, poll_delay={POLL_DELAY}s (default 10 / 0.5 s), results kept"
    enqueue_method = (
        f"`enqueue_job` ({CONCURRENT_ENQUEUES} concurrent; arq has no batch/pipelined enqueue)"
    )
    completion_method = "queue zset empty and a result key `arq:result:<id>` for every job"

    async def open(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(self.url))
        self.ids: list[str] = []

    async def close(self) -> None:
        await self.pool.aclose()

    async def enqueue_batch(self, indexes: range) -> None:
        idx = list(indexes)
        for start in range(0, len(idx), CONCURRENT_ENQUEUES):
            part = idx[start : start + CONCURRENT_ENQUEUES]
            await asyncio.gather(
                *(self.pool.enqueue_job("noop", i, _job_id=_job_id(i)) for i in part)
            )
            self.ids.extend(_job_id(i) for i in part)

    async def submit_one(self, i: int) -> None:
        await self.pool.enqueue_job("noop", i, _job_id=_job_id(i))

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [
            cli("arq"),
            "--custom-log-dict",
            "benchmarks.systems.arq.LOG_CONFIG",
            "benchmarks.systems.arq.WorkerSettings",
        ], {}

    def drained(self, mon: Monitor, n: int) -> bool:
        if int(mon.call("ZCARD", default_queue_name)) != 0:
            return False
        return mon.count_existing([result_key_prefix + j for j in self.ids]) == n


SYSTEM = Arq
