"""This project: ``asyncendpoints worker`` against the Redis store."""

from __future__ import annotations

import os

from benchmarks.systems.base import Monitor, System, cli

CHUNK = int(os.environ.get("BENCH_OURS_CHUNK", "1000"))
NAME = "noop"


class Ours(System):
    name = "ours"
    distribution = "asyncendpoints"
    enqueue_method = f"`app.submit_many` ({CHUNK} jobs per call: one pipeline)"
    completion_method = "queue list and lease set empty and the store's `completed` counter = N"

    @property
    def worker_config(self) -> str:  # type: ignore[override]
        from asyncendpoints.settings import Settings

        s = Settings()
        return (
            f"`asyncendpoints worker`, 1 process, concurrency {s.concurrency}, "
            f"batch_size {s.batch_size}, lease {s.lease_seconds:g} s, results kept"
        )

    async def open(self) -> None:
        from asyncendpoints.store.keys import KeySpace
        from benchmarks.systems.ours_app import app

        self.app = app
        await app.startup()
        keys = KeySpace(app.settings.key_prefix)
        self.queue_key = keys.queue(NAME)
        self.leases_key = keys.leases(NAME)
        self.stats_key = keys.stats(NAME)

    async def close(self) -> None:
        await self.app.shutdown()

    async def enqueue_batch(self, indexes: range) -> None:
        idx = list(indexes)
        for start in range(0, len(idx), CHUNK):
            await self.app.submit_many(NAME, [{"i": i} for i in idx[start : start + CHUNK]])

    async def submit_one(self, i: int) -> None:
        await self.app.submit(NAME, {"i": i})

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        return [cli("asyncendpoints"), "worker", "benchmarks.systems.ours_app:app"], {
            "ASYNCENDPOINTS_WORKER_HEALTH_PORT": "0",
            "ASYNCENDPOINTS_LOG_LEVEL": "WARNING",
        }

    def drained(self, mon: Monitor, n: int) -> bool:
        if int(mon.call("LLEN", self.queue_key)) != 0:
            return False
        if int(mon.call("ZCARD", self.leases_key)) != 0:
            return False
        completed = mon.call("HGET", self.stats_key, "completed")
        return int(completed or 0) >= n


SYSTEM = Ours
