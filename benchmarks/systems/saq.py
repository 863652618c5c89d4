"""saq: asyncio, a Redis list of queued ids, a key per job, an ``incomplete`` sorted set,
Lua scripts for enqueue.

Worker: ``saq benchmarks.systems.saq.settings`` (``--workers 1``: one process), concurrency 10
(the default), blocking dequeue (BLMOVE).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from saq import Queue

from benchmarks.systems._events import record
from benchmarks.systems.base import Monitor, System, cli, redis_url

CONCURRENCY = int(os.environ.get("BENCH_SAQ_CONCURRENCY", "10"))
CONCURRENT_ENQUEUES = 100


async def noop(ctx: dict[str, Any], *, i: int) -> None:
    record(i)


settings = {
    "queue": Queue.from_url(redis_url()),
    "functions": [noop],
    "concurrency": CONCURRENCY,
}


class Saq(System):
    name = "saq"
    distribution = "saq"
    worker_config = f"`saq` CLI, 1 process, concurrency {CONCURRENCY}"
    enqueue_method = (
        f"`Queue.enqueue` ({CONCURRENT_ENQUEUES} concurrent; saq has no pipelined enqueue)"
    )
    completion_method = "queued and active lists empty and the `incomplete` sorted set empty"

    async def open(self) -> None:
        self.queue = Queue.from_url(self.url)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue_batch(self, indexes: range) -> None:
        idx = list(indexes)
        for start in range(0, len(idx), CONCURRENT_ENQUEUES):
            part = idx[start : start + CONCURRENT_ENQUEUES]
            await asyncio.gather(*(self.queue.enqueue("noop", i=i) for i in part))

    async def submit_one(self, i: int) -> None:
        await self.queue.enqueue("noop", i=i)

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [cli("saq"), "--workers", "1", "benchmarks.systems.saq.settings"], {}

    def drained(self, mon: Monitor, n: int) -> bool:
        for key in ("saq:default:queued", "saq:default:active"):
            if int(mon.call("LLEN", key)) != 0:
                return False
        return int(mon.call("ZCARD", "saq:default:incomplete")) == 0


SYSTEM = Saq
