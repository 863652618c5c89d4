"""A stand-in worker for the scale-down test: holds at most one job, reports it, like a worker.

``python -m tests.controller.fake_worker REDIS_URL PREFIX NAME[,NAME...]`` (``POD_NAME`` is the
worker id). It registers itself with its in-flight count every 0.2 s, claims one job when it
holds none, renews its lease and forgets a job whose lease stopped being current (the test
completed it). SIGTERM: release, unregister, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time

from asyncendpoints.job import Lease, WorkerInfo
from asyncendpoints.store.redis import RedisJobStore


async def main(url: str, prefix: str, names: list[str]) -> int:
    worker_id = os.environ["POD_NAME"]
    store = RedisJobStore(url, prefix=prefix, timeout=2.0)
    await store.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    started = time.time()
    held: list[Lease] = []
    while not stop.is_set():
        if held:
            stale = await store.heartbeat(held, 60)
            held = [lease for lease in held if lease not in stale]
        if not held:
            held = [c.lease for c in await store.claim(worker_id, names, count=1, lease_seconds=60)]
        info = WorkerInfo(worker_id, tuple(names), 1, len(held), started, time.time())
        await store.register_worker(info, ttl=5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    await store.release(held)
    await store.unregister_worker(worker_id)
    await store.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))))
