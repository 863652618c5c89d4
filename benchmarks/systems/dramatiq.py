"""dramatiq with its Redis broker: a Lua script per enqueue, fetch (batched prefetch) and ack;
messages in a hash, ids in a list, acknowledgements in a set per worker.

Worker: ``dramatiq --processes 1 --threads 8`` (a supervisor process and one worker process
with 8 threads, the default thread count).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.systems._events import record
from benchmarks.systems.base import Monitor, System, cli, redis_url

THREADS = int(os.environ.get("BENCH_DRAMATIQ_THREADS", "8"))

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop", queue_name="default", max_retries=0)
def noop(i: int) -> None:
    record(i)


class Dramatiq(System):
    name = "dramatiq"
    distribution = "dramatiq"
    worker_config = f"`dramatiq --processes 1 --threads {THREADS}` (supervisor + 1 worker process)"
    enqueue_method = "`send` one by one (dramatiq has no pipelined enqueue)"
    completion_method = (
        "queue list empty and the message hash empty (a message is deleted on its ack)"
    )

    async def enqueue_batch(self, indexes: range) -> None:
        for i in indexes:
            noop.send(i)

    async def submit_one(self, i: int) -> None:
        noop.send(i)

    async def close(self) -> None:
        broker.close()

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [
            cli("dramatiq"),
            "benchmarks.systems.dramatiq",
            "--processes",
            "1",
            "--threads",
            str(THREADS),
        ], {}

    def drained(self, mon: Monitor, n: int) -> bool:
        if int(mon.call("LLEN", "dramatiq:default")) != 0:
            return False
        return int(mon.call("HLEN", "dramatiq:default.msgs")) == 0


SYSTEM = Dramatiq
