"""Celery with the Redis broker (kombu's Redis transport), result backend OFF.

Worker: ``celery worker --pool=solo`` (one process that runs tasks in itself: the fastest
single-process pool for no-op tasks; ``threads`` and ``prefork -c 1`` add a hand-off per task),
``task_acks_late`` so that a message is acknowledged after its task ran (what a store that
keeps acknowledgements does; the ack costs the same as an early one), and no heartbeat,
gossip or mingle (cluster chatter that does nothing for one worker).
"""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.systems._events import record
from benchmarks.systems.base import Monitor, System, cli, redis_url

POOL = os.environ.get("BENCH_CELERY_POOL", "solo")
PREFETCH = int(os.environ.get("BENCH_CELERY_PREFETCH", "4"))

app = Celery("bench", broker=redis_url(), set_as_current=True)
app.conf.update(
    result_backend=None,
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=PREFETCH,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(i: int) -> None:
    record(i)


class CeleryBench(System):
    name = "celery"
    distribution = "celery"
    worker_config = (
        f"`celery worker --pool={POOL}`, 1 process, prefetch multiplier {PREFETCH}, acks_late, "
        "result backend off, --without-heartbeat/gossip/mingle"
    )
    enqueue_method = "`apply_async` one by one (Celery has no pipelined publish)"
    completion_method = (
        "queue list empty and no unacknowledged message (kombu's `unacked` hash; acks_late)"
    )

    async def open(self) -> None:
        app.connection_for_write().ensure_connection(max_retries=3)

    async def close(self) -> None:
        app.close()

    async def enqueue_batch(self, indexes: range) -> None:
        with app.producer_or_acquire() as producer:
            for i in indexes:
                noop.apply_async(args=(i,), producer=producer)

    async def submit_one(self, i: int) -> None:
        noop.apply_async(args=(i,))

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [
            cli("celery"),
            "-A",
            "benchmarks.systems.celery",
            "worker",
            f"--pool={POOL}",
            "--concurrency=1" if POOL != "threads" else "--concurrency=4",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            "-Q",
            "celery",
        ], {}

    def drained(self, mon: Monitor, n: int) -> bool:
        if int(mon.call("LLEN", "celery")) != 0:
            return False
        return int(mon.call("HLEN", "unacked")) == 0


SYSTEM = CeleryBench
