"""taskiq with taskiq-redis' ListQueueBroker: LPUSH to enqueue, BRPOP to receive.

It keeps no state: no acknowledgement (a message popped by a worker that dies is lost), no
result (no result backend configured), no status. Worker: ``taskiq worker --workers 1`` (a
supervisor process and one worker process), max 100 async tasks (the default).
"""

from __future__ import annotations

import asyncio

from taskiq_redis import ListQueueBroker

from benchmarks.systems._events import record
from benchmarks.systems.base import Monitor, System, cli, redis_url

CONCURRENT_ENQUEUES = 100

broker = ListQueueBroker(redis_url())


@broker.task(task_name="noop")
async def noop(i: int) -> None:
    record(i)


class Taskiq(System):
    name = "taskiq"
    distribution = "taskiq"
    worker_config = "`taskiq worker --workers 1` (supervisor + 1 worker process), ListQueueBroker, no result backend, no acks"
    enqueue_method = f"`kiq` ({CONCURRENT_ENQUEUES} concurrent; no pipelined enqueue)"
    completion_method = "queue list empty (it keeps no completion record) after every handler ran"

    def version(self) -> str:
        from importlib.metadata import version

        return f"{version('taskiq')} (taskiq-redis {version('taskiq-redis')})"

    async def open(self) -> None:
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def enqueue_batch(self, indexes: range) -> None:
        idx = list(indexes)
        for start in range(0, len(idx), CONCURRENT_ENQUEUES):
            await asyncio.gather(*(noop.kiq(i) for i in idx[start : start + CONCURRENT_ENQUEUES]))

    async def submit_one(self, i: int) -> None:
        await noop.kiq(i)

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [
            cli("taskiq"),
            "worker",
            "benchmarks.systems.taskiq:broker",
            "--workers",
            "1",
            "--log-level",
            "WARNING",
        ], {}

    def drained(self, mon: Monitor, n: int) -> bool:
        return int(mon.call("LLEN", "taskiq")) == 0


SYSTEM = Taskiq
