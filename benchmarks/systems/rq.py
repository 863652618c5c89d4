"""RQ: sync, a Redis list per queue, a hash per job, registries (sorted sets) per state.

Worker: ``rq worker --worker-class rq.worker.SimpleWorker`` (one process that runs jobs in
itself; the default ``Worker`` forks a child per job, far slower for no-op jobs).
"""

from __future__ import annotations

from redis import Redis
from rq import Queue

from benchmarks.systems._events import record
from benchmarks.systems.base import Monitor, System, cli

CHUNK = 1000


def noop(i: int) -> None:
    record(i)


class Rq(System):
    name = "rq"
    distribution = "rq"
    worker_config = "`rq worker`, SimpleWorker (no fork per job), 1 process, results kept (default result_ttl 500 s)"
    enqueue_method = f"`Queue.enqueue_many` with a pipeline, {CHUNK} jobs per pipeline"
    completion_method = (
        "queue list empty and every job in RQ's FinishedJobRegistry (`rq:finished:default`)"
    )

    async def open(self) -> None:
        self.redis = Redis.from_url(self.url)
        self.queue = Queue("default", connection=self.redis)

    async def close(self) -> None:
        self.redis.close()

    async def enqueue_batch(self, indexes: range) -> None:
        idx = list(indexes)
        for start in range(0, len(idx), CHUNK):
            with self.redis.pipeline() as pipe:
                self.queue.enqueue_many(
                    [Queue.prepare_data(noop, args=(i,)) for i in idx[start : start + CHUNK]],
                    pipeline=pipe,
                )
                pipe.execute()

    async def submit_one(self, i: int) -> None:
        self.queue.enqueue(noop, i)

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [
            cli("rq"),
            "worker",
            "--worker-class",
            "rq.worker.SimpleWorker",
            "--logging_level",
            "WARNING",
            "--url",
            self.url,
            "default",
        ], {}

    def drained(self, mon: Monitor, n: int) -> bool:
        if int(mon.call("LLEN", "rq:queue:default")) != 0:
            return False
        return int(mon.call("ZCARD", "rq:finished:default")) >= n


SYSTEM = Rq
