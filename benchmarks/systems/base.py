"""What a benchmarked system provides to the harness."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def cli(name: str) -> str:
    """A console script of this virtualenv (the system's own worker command)."""
    path = BIN / name
    return str(path) if path.exists() else name


class Monitor:
    """The harness's own Redis client: counts its commands by name, so that they can be
    taken out of Redis' ``INFO commandstats`` (the harness's polling is not the system's work)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.counts: dict[str, int] = {}

    def call(self, *args: Any) -> Any:
        name = str(args[0]).lower()
        if name not in ("info", "config", "ping", "flushall", "client", "hello", "select"):
            self.counts[name] = self.counts.get(name, 0) + 1
        return self.client.execute_command(*args)

    def count_existing(self, keys: Sequence[str], chunk: int = 2000) -> int:
        """How many of ``keys`` exist (EXISTS, in chunks)."""
        total = 0
        for start in range(0, len(keys), chunk):
            total += int(self.call("EXISTS", *keys[start : start + chunk]))
        return total


class System:
    """One task queue under test. Subclasses live in ``benchmarks/systems/<name>.py``.

    The task of every system is a no-op that calls :func:`benchmarks.systems._events.record`
    with its index ``i`` (the only argument) and returns None.
    """

    name = "?"
    #: How the worker is configured, how batches are enqueued, how completion is read.
    worker_config = ""
    enqueue_method = ""
    completion_method = ""
    #: Short name of the Python distribution, for the version column.
    distribution = ""

    def __init__(self, url: str) -> None:
        self.url = url

    def version(self) -> str:
        from importlib.metadata import version

        try:
            return version(self.distribution)
        except Exception:
            return "?"

    async def open(self) -> None:
        """Connect the producer side."""

    async def close(self) -> None:
        """Disconnect the producer side."""

    async def enqueue_batch(self, indexes: range) -> None:
        """Enqueue one job per index, the fastest way the system offers for a batch."""
        raise NotImplementedError

    async def submit_one(self, i: int) -> None:
        """Enqueue one job, the ordinary way."""
        raise NotImplementedError

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        """The argv of ONE worker process (the system's own CLI) and extra environment."""
        raise NotImplementedError

    def drained(self, mon: Monitor, n: int) -> bool:
        """True when the system's own state says its queue is empty and all ``n`` jobs are
        finished (called only after the harness has seen every job's handler start)."""
        raise NotImplementedError
